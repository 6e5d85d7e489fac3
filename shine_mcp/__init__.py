"""Shine: an MCP-native skincare advisor."""

__version__ = "0.1.0"
