"""Shared fixtures: a Shine built per test on a copy of a demo-catalog database made once per run."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import ensure_demo_catalog
from shine_mcp.store.db import open_database
from tests.support.postgres import postgres_bin, throwaway_cluster


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings isolated from the developer's environment: only what the test names."""
    values: dict[str, object] = {"data_dir": data_dir, "database_url": None, "load_demo_catalog": True}
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def demo_database_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate and load the demo catalog once; tests copy the file instead of reloading it."""
    directory = tmp_path_factory.mktemp("template")

    async def build() -> None:
        db = await open_database(make_settings(directory))
        await ensure_demo_catalog(db)
        await db.close()

    asyncio.run(build())
    return directory / "shine.db"


@pytest.fixture
def settings(tmp_path: Path, demo_database_template: Path) -> Settings:
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    return make_settings(tmp_path)


@pytest.fixture
def empty_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, load_demo_catalog=False)


@pytest.fixture
def services(settings: Settings) -> Services:
    return Services(settings)


@pytest.fixture
def server(settings: Settings, services: Services) -> MCPServer:
    return build_server(settings, services)


@pytest.fixture
async def client(server: MCPServer) -> AsyncIterator[Client]:
    async with connected_client(server) as connected:
        yield connected


@asynccontextmanager
async def connected_client(server: MCPServer) -> AsyncIterator[Client]:
    """An in-process client whose task group lives in one task of its own.

    pytest-asyncio may finish an async fixture in another task than it started it in, and anyio's
    task groups (inside `Client`) must be exited where they were entered.
    """
    box: list[Client] = []
    failed: list[BaseException] = []
    ready, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        try:
            async with Client(server) as connected:
                box.append(connected)
                ready.set()
                await done.wait()
        except BaseException as exc:
            failed.append(exc)
            ready.set()
            raise

    task = asyncio.create_task(hold())
    await ready.wait()
    if failed:
        await task
    try:
        yield box[0]
    finally:
        done.set()
        await task


@pytest.fixture(scope="session")
def postgres_binaries() -> None:
    """PostgreSQL's server programs, which every PostgreSQL test needs (`make test` installs them)."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries are not installed (make test installs them)")


@pytest.fixture(scope="session")
def postgres_url(postgres_binaries: None) -> Iterator[str]:
    with throwaway_cluster() as url:
        yield url
