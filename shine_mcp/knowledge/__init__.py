"""Ingredient knowledge as data with sources, and the INCI parser.

A leaf package (stdlib, pydantic, data files): the store's importers and the tools both use it.
"""

from shine_mcp.knowledge.base import (
    Caution,
    CautionKind,
    Clash,
    ConcernClaim,
    Evidence,
    Family,
    Ingredient,
    InteractionRule,
    KnowledgeBase,
    Source,
    load_knowledge,
    load_knowledge_from,
)
from shine_mcp.knowledge.inci import ParsedIngredient, parse_inci

__all__ = [
    "Caution",
    "CautionKind",
    "Clash",
    "ConcernClaim",
    "Evidence",
    "Family",
    "Ingredient",
    "InteractionRule",
    "KnowledgeBase",
    "ParsedIngredient",
    "Source",
    "load_knowledge",
    "load_knowledge_from",
    "parse_inci",
]
