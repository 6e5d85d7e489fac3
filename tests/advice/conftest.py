"""People calling the advice tools with their own identity, and independent checks of the hard limits
(written against the knowledge base, not against the ranking code they check)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.knowledge import KnowledgeBase, load_knowledge


class Shopper:
    def __init__(self, client: Client, settings: Settings, name: str) -> None:
        self.client = client
        self.user_id = f"usr_{name}_{secrets.token_hex(4)}"
        self.meta = identity_meta(self.user_id, settings)

    async def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return await self.client.call_tool(tool, arguments, meta=self.meta)

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.call(tool, **arguments)
        assert not result.is_error, f"{tool}: {text_of(result)}"
        assert result.structured_content is not None
        return result.structured_content

    async def refused(self, tool: str, **arguments: Any) -> str:
        result = await self.call(tool, **arguments)
        assert result.is_error, f"{tool} should refuse {arguments}"
        return text_of(result)


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@pytest.fixture
def shopper(client: Client, settings: Settings) -> Any:
    def make(name: str) -> Shopper:
        return Shopper(client, settings, name)

    return make


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


async def ingredients_of(client: Client, product_id: str) -> list[str]:
    result = await client.call_tool("get_product", {"product_id": product_id})
    assert result.structured_content is not None
    return list(result.structured_content["ingredients"])


def avoided_in(kb: KnowledgeBase, names: list[str], avoid: list[str]) -> list[str]:
    """Ingredients of `names` a person avoiding `avoid` must never be offered."""
    found = []
    for word in avoid:
        keys = {k.lower() for k in kb.expand_exclusions([word])}
        for name in names:
            mine = {k.lower() for k in kb.active_keys(name)}
            if (keys and keys & mine) or (not keys and word.lower() in name.lower()):
                found.append(f"{name} ({word})")
    return found


def unsafe_in_pregnancy(kb: KnowledgeBase, names: list[str]) -> list[str]:
    return [n for n in names if "pregnancy" in kb.caution_kinds(n) or kb.family_of(n) == "retinoid"]
