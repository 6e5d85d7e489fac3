"""The async engine and session factory, and bringing the schema up to date on start-up."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shine_mcp.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")
READ_THREADS = 4


class SqliteReader:
    """Read-only sqlite3 connections on a few threads of their own, for hot read paths (catalog search).

    Through aiosqlite every statement, fetch and cursor close is a round trip to its thread (about 28 per
    search); here a whole search runs in one hop. The connections are opened read-only, and WAL mode lets
    them read committed data while the engine writes.
    """

    def __init__(self, path: Path) -> None:
        self._uri = f"file:{path}?mode=ro"
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="shine-sqlite-read")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._uri, uri=True, timeout=5, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=5000")
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: work(self._connection()))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite") or ":memory:" in url or "///" not in url:
        return None
    return Path(url.split("///", 1)[1].split("?", 1)[0])


@dataclass(frozen=True)
class Database:
    """One engine and its session factory, created once per process and passed to whoever needs it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reader: SqliteReader | None = field(default=None, compare=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `shine serve` and `shine mcp` share one file; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 5})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave the dialect-specific full-text objects, managed by hand in the migrations, out of comparisons."""
    if type_ == "table" and name is not None and name.startswith("products_fts"):
        return False
    return not (type_ in ("column", "index") and name in ("search_vector", "ix_products_search_vector"))


def _upgrade(connection: Connection, url: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")  # feature branches of migrations may run side by side


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """Open the configured database and apply any pending migrations (never destructive)."""
    url = settings.effective_database_url
    if url.startswith("sqlite") and ":memory:" not in url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if migrate:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, url)
    sqlite_file = _sqlite_file(url)
    return Database(
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        reader=SqliteReader(sqlite_file) if sqlite_file is not None else None,
    )
