"""How clients see Shine's tools: a title on every tool, descriptions without source-code indentation,
and schemas a single-`type` client (Gemini's function declarations) can read."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from shine_mcp.auth.toolsets import TOOLSETS
from shine_mcp.config import Settings
from shine_mcp.server import build_server


@pytest.fixture
def server(settings: Settings) -> MCPServer:
    return build_server(settings.model_copy(update={"toolsets": list(TOOLSETS)}))


def _type_arrays(schema: Any, path: str = "") -> list[str]:
    if isinstance(schema, dict):
        found = [path] if isinstance(schema.get("type"), list) else []
        return found + [p for key, value in schema.items() for p in _type_arrays(value, f"{path}.{key}")]
    if isinstance(schema, list):
        return [p for i, item in enumerate(schema) for p in _type_arrays(item, f"{path}[{i}]")]
    return []


async def test_every_tool_has_a_title(client: Client) -> None:
    untitled = [tool.name for tool in (await client.list_tools()).tools if not tool.title]
    assert untitled == [], "add a title to shine_mcp/tool_listing.py TITLES"


async def test_tool_descriptions_carry_no_source_indentation(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        assert tool.description
        indented = [line for line in tool.description.splitlines() if line.startswith("    ")]
        assert indented == [], tool.name


# "Use it when the shopper...", "Use it after search_products...", "Use it to revisit...": the sentence a
# model reads to choose between tools.
WHEN_TO_USE = re.compile(r"(^|[.:]\s+)Use it (when|after|before|to|for|once)\b", re.MULTILINE)


async def test_every_tool_description_says_when_to_use_it(client: Client) -> None:
    unclear = [
        t.name for t in (await client.list_tools()).tools if not WHEN_TO_USE.search(t.description or "")
    ]
    assert unclear == [], "start a sentence of these descriptions with 'Use it when ...'"


async def test_nullable_fields_are_written_as_any_of_not_type_arrays(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        assert _type_arrays(tool.input_schema) == [], tool.name
        assert _type_arrays(tool.output_schema) == [], tool.name


async def test_search_results_still_validate_against_the_published_schema(client: Client) -> None:
    # The client validates structured content against the output schema: a null image size must pass.
    result = await client.call_tool("search_products", {"query": "sunscreen", "limit": 3})
    assert not result.is_error
    assert result.structured_content and result.structured_content["products"]
