"""The async engine and session factory, and bringing the schema up to date on start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shine_mcp.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")
READ_THREADS = 4


class SqliteThreads:
    """A synchronous engine on the same SQLite file, used from a few threads of its own: reads on a small
    pool, writes on one thread (SQLite has one writer at a time; queueing here beats its busy handler,
    which sleeps milliseconds between tries).

    Through aiosqlite every statement, fetch and cursor close is a round trip to its thread, eight or so
    per statement; a unit of work sent here (a search, a webhook's transaction) costs one. WAL mode lets
    these connections and the async engine's share the file.
    """

    def __init__(self, path: Path) -> None:
        self.engine = create_sync_engine(
            f"sqlite:///{path}",
            connect_args={"check_same_thread": False, "timeout": 5},
            pool_size=READ_THREADS + 1,
            max_overflow=0,
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="shine-sqlite-read")
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shine-sqlite-write")

    def _run(self, pool: ThreadPoolExecutor, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        def unit() -> T:
            with self.engine.connect() as connection:  # closing without a commit rolls back
                return work(connection)

        return asyncio.get_running_loop().run_in_executor(pool, unit)

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._reads, work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._writes, work)

    def close(self) -> None:
        self._reads.shutdown(wait=True)
        self._writes.shutdown(wait=True)
        self.engine.dispose()


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite") or ":memory:" in url or "///" not in url:
        return None
    return Path(url.split("///", 1)[1].split("?", 1)[0])


@dataclass(frozen=True)
class Database:
    """One engine and its session factory, created once per process and passed to whoever needs it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    threads: SqliteThreads | None = field(default=None, compare=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` with a synchronous Core connection and return its result: in one hop to a reader
        thread on SQLite, through `AsyncConnection.run_sync` elsewhere. For hot paths (search, webhooks);
        plain code uses `session()`."""
        if self.threads is not None:
            return await self.threads.read(work)
        async with self.engine.connect() as connection:
            return await connection.run_sync(work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Like `read`, on the one writer thread on SQLite. `work` commits itself; anything else rolls back."""
        if self.threads is not None:
            return await self.threads.write(work)
        async with self.engine.connect() as connection:
            return await connection.run_sync(work)

    async def close(self) -> None:
        if self.threads is not None:
            self.threads.close()
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


HAND_MANAGED_TABLES = ("products_fts", "catalog_version", "catalog_row_changes", "sqlite_sequence")


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave the dialect-specific objects managed by hand in the migrations (full-text index, catalog change
    tracking) out of comparisons."""
    if type_ == "table" and name is not None and name.startswith(HAND_MANAGED_TABLES):
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
        threads=SqliteThreads(sqlite_file) if sqlite_file is not None else None,
    )
