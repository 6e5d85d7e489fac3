"""The Starlette shell around the Shine MCP server."""
