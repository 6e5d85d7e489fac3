"""Ingredient knowledge as data with sources, and the INCI parser.

A leaf package (stdlib, pydantic, data files): the store's importers and the tools both use it.
"""

from shine_mcp.knowledge.base import Ingredient, KnowledgeBase, load_knowledge
from shine_mcp.knowledge.inci import ParsedIngredient, parse_inci

__all__ = ["Ingredient", "KnowledgeBase", "ParsedIngredient", "load_knowledge", "parse_inci"]
