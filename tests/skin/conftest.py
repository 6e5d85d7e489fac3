"""Fixtures for the skin tools: real face photos (from `tests/models`), callers on stdio and over HTTP,
and a photo host served over HTTPS by a local fake for the https-URL path."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Iterator
from collections.abc import Mapping as MappingABC
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.integrations.image_fetch import ImageFetcher
from shine_mcp.integrations.public_http import AddressPolicy
from shine_mcp.services import Services
from shine_mcp.store import skin_reports
from shine_mcp.tools import skin as skin_tools
from tests.auth.support import TLSFiles, make_tls, serving
from tests.fakes import image_host
from tests.models.conftest import ASTRONAUT, HOPPER, SKIMAGE_DATA, encode, hopper, hopper_bytes  # noqa: F401
from tests.support.postgres import free_port

__all__ = ["ASTRONAUT", "HOPPER", "SKIMAGE_DATA", "encode"]
T = TypeVar("T")


@asynccontextmanager
async def hosted(context: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter and exit `context` in one task of its own.

    pytest-asyncio runs an async fixture's setup and teardown in two different tasks, and anyio (inside
    `mcp.Client`) refuses to exit a cancel scope from another task than the one that entered it
    (pytest-dev/pytest-asyncio#1191). A host task that lives from setup to teardown sidesteps that."""
    entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    leave = asyncio.Event()

    async def host() -> None:
        try:
            async with context as value:
                entered.set_result(value)
                await leave.wait()
        except BaseException as exc:
            if not entered.done():
                entered.set_exception(exc)
            raise

    task = asyncio.create_task(host())
    with anyio.fail_after(30):
        value = await entered
    try:
        yield value
    finally:
        leave.set()
        with anyio.fail_after(30):
            await task


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes, media: str = "image/jpeg") -> str:
    return f"data:{media};base64,{b64(data)}"


def web_user(settings: Settings, user_id: str) -> dict[str, Any]:
    """The `_meta` the web shell sends for a signed-in person: that call arrives over HTTP."""
    return identity_meta(user_id, settings)


async def call(
    client: Client, tool: str, arguments: dict[str, Any], meta: MappingABC[str, Any] | None = None
) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments, meta=dict(meta) if meta else None)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def call_error(
    client: Client, tool: str, arguments: dict[str, Any], meta: MappingABC[str, Any] | None = None
) -> str:
    result = await client.call_tool(tool, arguments, meta=dict(meta) if meta else None)
    assert result.is_error, result.structured_content
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert text.strip() != f"Error executing tool {tool}", "a crash, not an anticipated ToolError"
    assert "Traceback" not in text
    return text


async def count(services: Services, user_id: str) -> int:
    return await skin_reports.count_reports(services.db, user_id)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("skin-tls"))


@pytest.fixture
def trusting_test_ca(tls: TLSFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca))


@pytest.fixture
def photo_host(tls: TLSFiles, hopper_bytes: bytes) -> Iterator[tuple[image_host.FakeImageHost, str]]:  # noqa: F811
    """The fake photo host on 127.0.0.1 over HTTPS: (its state, its base URL)."""
    host = image_host.FakeImageHost(photo=hopper_bytes)
    with serving(image_host.create_app(host), free_port(), tls) as url:
        try:
            yield host, url
        finally:
            host.release.set()


@pytest.fixture
def loopback_fetcher(settings: Settings, trusting_test_ca: ssl.SSLContext) -> ImageFetcher:
    """A fetcher whose address policy lets 127.0.0.1 (and nothing else private) through, for the fake."""
    return ImageFetcher(
        max_bytes=settings.max_photo_bytes,
        timeout=10.0,
        policy=AddressPolicy.allowing(["127.0.0.1/32"]),
        ssl_context=trusting_test_ca,
    )


@pytest.fixture
async def client(server: MCPServer) -> AsyncIterator[Client]:
    """The shared in-process client (tests/conftest.py), hosted in its own task: see `hosted`."""
    async with hosted(Client(server)) as connected:
        yield connected


@pytest.fixture
async def url_client(services: Services, loopback_fetcher: ImageFetcher) -> AsyncIterator[Client]:
    """Only the skin tools, on a server whose fetcher may reach the local fake photo host."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[Services]:
        async with services.running():
            yield services

    server = MCPServer(name="shine-skin-test", lifespan=lifespan)
    skin_tools.register(server, services, fetcher=loopback_fetcher)
    async with hosted(Client(server)) as connected:
        yield connected
