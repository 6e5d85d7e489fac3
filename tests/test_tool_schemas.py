"""Tool names and schemas are a public API: a change must be deliberate and visible in review.

To accept a deliberate change: `SHINE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_tool_schemas.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from shine_mcp.auth.toolsets import TOOLSETS
from shine_mcp.config import Settings
from shine_mcp.server import build_server

SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_schemas.json"


@pytest.fixture
def server(settings: Settings) -> MCPServer:
    """Every toolset opted in: the shop's tools are listed only to admins, and the snapshot covers them too."""
    return build_server(settings.model_copy(update={"toolsets": list(TOOLSETS)}))


async def test_every_tool_schema_matches_the_snapshot(client: Client) -> None:
    tools = (await client.list_tools()).tools
    current = {
        tool.name: {"input": tool.input_schema, "output": tool.output_schema}
        for tool in sorted(tools, key=lambda t: t.name)
    }
    if os.environ.get("SHINE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(current) == sorted(expected), "a tool was added, removed or renamed"
    for name in current:
        assert current[name] == expected[name], f"the schema of {name} changed"


async def test_every_tool_has_an_output_schema_and_a_description(client: Client) -> None:
    for tool in (await client.list_tools()).tools:
        assert tool.output_schema, f"{tool.name} returns unstructured content"
        assert tool.description and len(tool.description.splitlines()) >= 2, tool.name
