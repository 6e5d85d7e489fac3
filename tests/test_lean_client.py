"""The load benchmarks' lean client (`benchmarks/lean_http.py`) against a real `shine serve`: its tool calls
answer what the MCP SDK's client answers, and the chat stream reads as the widget reads it. Its figures
are only as good as its reading of the wire."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client

from benchmarks.lean_http import LeanHttp, LeanMcp, McpError, sse_events
from benchmarks.load_support import Served, settings_for, shine_serve, shopper_tokens

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo_database_template: Path) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("lean-client")
    shutil.copy(demo_database_template, data_dir / "shine.db")
    with shine_serve(data_dir) as running:
        yield running


CALLS = [
    ("search_products", {"query": "niacinamide serum", "limit": 3}),
    ("recommend_products", {"concerns": ["acne"], "skin_type": "oily", "limit": 2}),
    ("get_product", {"product_id": "prd_does_not_exist"}),  # a tool error a shopper can act on
]


async def both_clients(base: str) -> list[tuple[object, object]]:
    pairs = []
    async with Client(f"{base}/mcp") as sdk, LeanMcp(f"{base}/mcp") as lean:
        for name, arguments in CALLS:
            expected, got = await sdk.call_tool(name, arguments), await lean.call_tool(name, arguments)
            pairs.append(
                (
                    (expected.is_error, expected.structured_content, [b.text for b in expected.content]),
                    (got.is_error, got.structured_content, [b.text for b in got.content]),
                )
            )
    return pairs


def test_lean_tool_calls_answer_what_the_sdk_client_answers(served: Served) -> None:
    pairs = asyncio.run(both_clients(served.base))

    for expected, got in pairs:
        assert got == expected
    assert pairs[0][1][1]["products"], "the search found products"  # type: ignore[index]
    assert pairs[2][1][0] is True, "an unknown product is a tool error"  # type: ignore[index]


async def two_chat_turns(base: str) -> tuple[list[list[str]], dict[str, str]]:
    names: list[list[str]] = []
    async with LeanHttp(base) as http:
        for message in ("show me serums", "what's in the first one?"):
            body = json.dumps({"message": message}).encode()
            answer, chunks = await http.stream(
                "POST", "/api/chat", body, {"content-type": "application/json"}
            )
            assert answer.status == 200
            names.append([name async for name, _data in sse_events(chunks)])
        return names, dict(http.cookies)


def test_a_chat_reply_streams_to_done_and_the_guest_keeps_its_cookies(served: Served) -> None:
    turns, cookies = asyncio.run(two_chat_turns(served.base))

    for names in turns:
        assert "text" in names and names[-1] == "done"
    assert cookies, "the guest's session cookies are kept and sent back, as a browser does"


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory, demo_database_template: Path) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("lean-client-auth")
    shutil.copy(demo_database_template, data_dir / "shine.db")
    with shine_serve(data_dir, mcp_auth=True) as running:
        yield running


async def carts_of_two_shoppers(served: Served) -> tuple[list[int], list[int]]:
    data_dir = served.log_path.parent
    first, second = await shopper_tokens(settings_for(data_dir, None), served.base, 2)
    url = f"{served.base}/mcp"
    async with LeanMcp(url, token=first) as one, LeanMcp(url, token=second) as two:
        page = await one.call_tool("search_products", {"query": "serum", "limit": 2})
        assert page.structured_content is not None
        product = page.structured_content["products"][0]["id"]
        added = await one.call_tool("add_to_cart", {"product_id": product, "quantity": 2})
        assert not added.is_error, added.content
        carts = [await client.call_tool("view_cart", {}) for client in (one, two)]
    first_lines, second_lines = ((cart.structured_content or {}).get("lines", []) for cart in carts)
    return [line["quantity"] for line in first_lines], [line["quantity"] for line in second_lines]


async def keyless_view_cart(served: Served) -> None:
    async with LeanMcp(f"{served.base}/mcp") as keyless:
        await keyless.call_tool("view_cart", {})


def test_each_signed_in_client_shops_with_its_own_cart(signed_in: Served) -> None:
    first, second = asyncio.run(carts_of_two_shoppers(signed_in))

    assert first == [2] and second == []
    with pytest.raises(McpError, match="http 401"):
        asyncio.run(keyless_view_cart(signed_in))


async def split(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
async def test_server_sent_events_survive_any_chunking(size: int) -> None:
    stream = b': ping\r\n\r\nevent: text\r\ndata: {"a": 1}\r\n\r\ndata: one\ndata: two\n\nevent: done\ndata: {}\n\n'

    events = [event async for event in sse_events(split(stream, size))]

    assert events == [("text", '{"a": 1}'), ("message", "one\ntwo"), ("done", "{}")]
