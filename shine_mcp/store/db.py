"""The async engine and session factory, and bringing the schema up to date on start-up."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import logging
import queue
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shine_mcp.config import Settings
from shine_mcp.store.writes import (
    BUSY_TIMEOUT_SECONDS,
    RETRY_AFTER_SECONDS,
    WRITE_PATIENCE_SECONDS,
    DatabaseBusy,
    WriteGate,
    is_busy,
)

__all__ = [
    "RETRY_AFTER_SECONDS",
    "Database",
    "DatabaseBusy",
    "DatabaseNotOpen",
    "SqliteThreads",
    "busy_reason",
    "database_busy",
    "is_busy",
    "lift_session_time_limits",
    "lift_time_limits",
    "open_database",
    "statement_cancelled",
]

log = logging.getLogger("shine.store")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")
READ_THREADS = 4
MAX_WRITE_BATCH = 64  # units the writer thread runs in one turn of the write gate


def _backoff(attempt: int) -> float:
    """Full jitter: a random wait up to an exponentially growing cap, so writers that collided spread out."""
    return random.uniform(0, min(1.0, 0.02 * 2**attempt))


class SqliteThreads:
    """A synchronous engine on the same SQLite file, used from threads of its own: reads on a small pool,
    writes on one thread (SQLite has one writer at a time; queueing here beats its busy handler, which
    sleeps milliseconds between tries).

    Through aiosqlite every statement, fetch and cursor close is a round trip to its thread, eight or so
    per statement; a unit of work sent here (a search, a webhook's transaction) costs one. WAL mode lets
    these connections and the async engine's share the file. The writer thread takes a turn in the
    process's `WriteGate` and runs the units queued by then back to back, without the event loop.
    """

    def __init__(self, path: Path, gate: WriteGate | None = None) -> None:
        self.engine = create_sync_engine(
            f"sqlite:///{path}",
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS},
            pool_size=READ_THREADS + 1,
            max_overflow=0,
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.gate = gate
        self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="shine-sqlite-read")
        self._units: queue.SimpleQueue[_Unit[Any] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="shine-sqlite-write", daemon=True)
        self._writer.start()

    async def read(self, work: Callable[[Connection], T]) -> T:
        def unit() -> T:
            with self.engine.connect() as connection:  # closing without a commit rolls back
                return work(connection)

        # The caller's context goes along (run_in_executor drops it): its trace span parents the
        # statements' spans, and log lines written there carry its request id.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._reads, context.run, unit)

    async def write(self, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(work, loop.create_future(), loop, contextvars.copy_context())
        self._units.put(unit)
        return await unit.future

    def _write_loop(self) -> None:
        while (first := self._units.get()) is not None:
            try:
                if self.gate is not None:
                    self.gate.acquire_blocking(self)
            except DatabaseBusy as busy:
                first.settle(error=busy)
                continue
            stop = False
            try:
                self._run(first)
                for _ in range(MAX_WRITE_BATCH - 1):
                    try:
                        unit = self._units.get_nowait()
                    except queue.Empty:
                        break
                    if unit is None:
                        stop = True
                        break
                    self._run(unit)
            finally:
                if self.gate is not None:
                    self.gate.release(self)
            if stop:
                return

    def _run(self, unit: _Unit[Any]) -> None:
        try:
            with self.engine.connect() as connection:  # closing without a commit rolls back
                result = unit.context.run(_immediately, connection, unit.work)
        except BaseException as error:
            unit.settle(error=error)
        else:
            unit.settle(result=result)

    def close(self) -> None:
        self._units.put(None)
        self._writer.join()
        self._reads.shutdown(wait=True)
        self.engine.dispose()


@dataclass(eq=False)
class _Unit(Generic[T]):
    """A unit of work for the writer thread and the future its caller awaits in its event loop."""

    work: Callable[[Connection], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    context: contextvars.Context  # the caller's (its trace span, its request id), run in on the thread

    def settle(self, *, result: Any = None, error: BaseException | None = None) -> None:
        def deliver() -> None:
            if self.future.done():  # the caller was cancelled; the unit ran (or failed) all the same
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            self.loop.call_soon_threadsafe(deliver)


def _immediately(connection: Connection, work: Callable[[Connection], T]) -> T:
    """Run a unit of work in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the unit reads
    anything, so its reads and writes are one atomic step and it never has to upgrade a read snapshot
    (an upgrade that loses a race fails at once, without SQLite's busy handler). Taking the lock is the
    only step that meets other writers (other processes: this one's wait in the `WriteGate`); it is
    retried with jitter until `WRITE_PATIENCE_SECONDS`, and a unit runs only once it holds the lock, so a
    retry never repeats a write."""
    deadline = time.monotonic() + WRITE_PATIENCE_SECONDS
    attempt = 0
    while True:
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            break
        except sa_exc.OperationalError as error:
            connection.rollback()
            if not is_busy(error):
                raise
            if time.monotonic() >= deadline:
                log.warning("the database stayed locked for %.0f s; a write gave up", WRITE_PATIENCE_SECONDS)
                raise DatabaseBusy() from error
            time.sleep(_backoff(attempt))  # on the writer thread: nothing else could write meanwhile
            attempt += 1
    return work(connection)


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite") or ":memory:" in url or "///" not in url:
        return None
    return Path(url.split("///", 1)[1].split("?", 1)[0])


@asynccontextmanager
async def _file_lock(database: Path) -> AsyncIterator[None]:
    """An exclusive lock on a file beside the SQLite database, held while the block runs: the SQLite twin of
    the PostgreSQL advisory locks, for start-up work every `shine serve` worker would do. The kernel drops
    it when the holder exits, so a worker that dies holding it blocks no one."""
    async with await anyio.open_file(database.with_name(database.name + ".startup-lock"), "a+b") as handle:
        descriptor = handle.wrapped.fileno()
        await anyio.to_thread.run_sync(fcntl.flock, descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


class DatabaseNotOpen(RuntimeError):
    """The database was used before `Database.open()` (or after `close()`)."""


@dataclass(frozen=True)
class _Opened:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reading_sessions: async_sessionmaker[AsyncSession]
    threads: SqliteThreads | None
    owned: bool = True  # False on a view of another Database's engine (`engine_only`)


class Database:
    """The configured database, one per process, passed to whoever needs it from the moment it is built.

    Building it opens nothing: `open()` (when the app starts; once, later calls do nothing) creates the
    engine and brings the schema up to date, and `close()` disposes of it (it can be opened again).
    Using it in between raises `DatabaseNotOpen`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._opened: _Opened | None = None
        self._lock = anyio.Lock()

    async def open(self, *, migrate: bool = True) -> Database:
        """Create the engine and apply any pending migrations (never destructive); idempotent."""
        async with self._lock:
            if self._opened is None:
                self._opened = await _open(self.settings, migrate=migrate)
        return self

    def _require(self) -> _Opened:
        if self._opened is None:
            raise DatabaseNotOpen(
                "the database is not open: call `await db.open()` (the app and `Services.running()` do) first"
            )
        return self._opened

    @property
    def engine(self) -> AsyncEngine:
        return self._require().engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._require().sessions

    @property
    def threads(self) -> SqliteThreads | None:
        return self._require().threads

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def engine_only(self) -> Database:
        """This open database without SQLite's threads of its own: `read` and `write` go through the async
        engine (to compare the two paths). Closing the view leaves this one open."""
        view = Database(self.settings)
        view._opened = replace(self._require(), threads=None, owned=False)
        return view

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for lookups (and at most single-statement writes, each atomic on its own), on PostgreSQL
        in autocommit: a lookup is one round trip instead of three (BEGIN, the SELECT, ROLLBACK). Under READ
        COMMITTED each statement reads its own snapshot inside a transaction too, so reads see the same rows;
        what autocommit gives up is only the all-or-nothing of several writes, which belong in `session()`.
        On SQLite it is `session()`: its driver begins no transaction for a SELECT."""
        async with self._require().reading_sessions() as session:
            yield session

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work` with a synchronous Core connection and return its result: in one hop to a reader
        thread on SQLite, through `AsyncConnection.run_sync` in autocommit elsewhere (as `reading`: no BEGIN
        or ROLLBACK around the reads). For hot paths (search, webhooks); plain code uses `session()`."""
        if self.threads is not None:
            return await self.threads.read(work)
        async with self._autocommit() as connection:
            return await connection.run_sync(work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Like `read`, on the one writer thread on SQLite. `work` commits itself; anything else rolls back.

        On SQLite the units queue for the thread, which runs them back to back, each in `BEGIN IMMEDIATE`
        and retried while the database is locked (see `_immediately`). They do not take turns in the
        async engine's `WriteGate`: a turn there costs trips through the event loop, and a busy loop
        would then set the pace of every write (measured: 6 rate-limit hits/s instead of hundreds)."""
        if self.threads is not None:
            return await self.threads.write(work)
        async with self.engine.connect() as connection:
            return await connection.run_sync(work)

    async def write_one(self, work: Callable[[Connection], T]) -> T:
        """`write` for a unit that is a single statement, atomic on its own: on PostgreSQL it runs in
        autocommit, one round trip instead of three (BEGIN, the statement, COMMIT); on SQLite it is a unit
        on the writer thread like any other. `work` still commits (a no-op in autocommit)."""
        if self.threads is not None:
            return await self.threads.write(work)
        async with self._autocommit() as connection:
            return await connection.run_sync(work)

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, in autocommit on PostgreSQL (on SQLite without its threads, the in-memory
        database of tests: as it is)."""
        async with self.engine.connect() as connection:
            if self.dialect == "postgresql":
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @asynccontextmanager
    async def one_process_at_a_time(self) -> AsyncIterator[None]:
        """Run the block while no other process sharing this database runs one: start-up work every worker
        would do (loading the demo catalog into an empty database) happens once, and the others then find
        it done. PostgreSQL: a session advisory lock on a connection of its own; a SQLite file: a file lock
        beside it (`_file_lock`); an in-memory database: nothing (one process).

        The lock's connection waits as long as another process holds the lock, and then sits idle in its
        transaction while the block runs: both without the pool's time limits (`lift_time_limits`)."""
        if self.dialect != "postgresql":
            sqlite_file = _sqlite_file(self.settings.effective_database_url)
            if sqlite_file is None:
                yield
                return
            async with _file_lock(sqlite_file):
                yield
            return
        async with self.engine.connect() as connection:
            await connection.run_sync(lift_time_limits)
            await connection.exec_driver_sql(f"SELECT pg_advisory_lock({STARTUP_LOCK_KEY})")
            try:
                yield
            finally:
                await connection.exec_driver_sql(f"SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})")

    async def close(self) -> None:
        """Dispose of the engine (and SQLite's threads); nothing when not open."""
        async with self._lock:
            opened, self._opened = self._opened, None
            if opened is None or not opened.owned:
                return
            if opened.threads is not None:
                opened.threads.close()
            await opened.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `shine serve` and `shine mcp` share one file; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


# A pooled PostgreSQL connection unused for this long is pinged before it is handed out again.
PING_AFTER_IDLE_SECONDS = 5.0
# The PostgreSQL connections a process opens at most, all kept once opened (SHINE_DB_POOL_SIZE). SQLAlchemy's
# default (5 kept, 10 more closed as soon as they came back) opened and closed connections 3-6 times a second
# under the load benchmark: a new one costs PostgreSQL a backend (~7 ms of CPU) and the worker asyncpg's
# set-up (~3 ms), and its statements are prepared again. The same 15 at most; a 16th request waits for one.
POSTGRES_POOL_SIZE = 15


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a connection on checkout only when it sat in the pool `idle_seconds` or longer.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and through asyncpg a ping is three round trips
    (BEGIN, ';', ROLLBACK): more than a search's own statement. A connection in steady use has just
    worked; one left idle may have been dropped by a restart or a proxy's idle timeout, and a failed
    ping makes the pool open a new one (a `DisconnectionError` from the checkout event). A connection
    dropped within the idle time fails its statement, and the pool then replaces every connection
    older than the failure; read-only searches retry once (`store/search.py`)."""
    sync_engine = engine.sync_engine

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or just used
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise sa_exc.DisconnectionError("the database dropped an idle connection") from error

    event.listen(sync_engine, "checkin", checked_in)
    event.listen(sync_engine, "checkout", checked_out)


def create_engine(
    url: str,
    gate: WriteGate | None = None,
    *,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    pool_size: int = POSTGRES_POOL_SIZE,
    statement_timeout: float = 0.0,
    idle_in_transaction_timeout: float = 0.0,
) -> AsyncEngine:
    """The async engine; on a SQLite file, `gate` (when given) queues its writers (see `WriteGate`); on
    PostgreSQL a connection idle `ping_after_idle` seconds is pinged before use (`_ping_when_idle`), the pool
    keeps `pool_size` connections, and each connection's session carries the two timeouts (seconds, 0: none;
    see `_time_limits`)."""
    if url.startswith("sqlite"):
        # Writers waiting in the gate hold a pooled connection: leave some room for readers beside them
        # (each aiosqlite connection is a thread; many more would cost the event loop its GIL time).
        pool = {"pool_size": 5, "max_overflow": 20} if _sqlite_file(url) is not None else {}
        engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if gate is not None and _sqlite_file(url) is not None:
            gate.install(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        connect_args={"server_settings": _time_limits(statement_timeout, idle_in_transaction_timeout)},
    )
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _time_limits(statement: float, idle_in_transaction: float) -> dict[str, str]:
    """The session settings every pooled PostgreSQL connection starts with (sent as it connects: no round
    trip). `statement_timeout` bounds a statement's run and its waits for locks: a write stuck behind another
    connection's row lock is cancelled (SQLSTATE 57014, `statement_cancelled`) and the request ends with
    "busy, try again" instead of hanging. `idle_in_transaction_session_timeout` closes a connection left
    inside a transaction (a leaked session, a task stuck between two statements) so its locks go. Work that is
    long on purpose lifts both for its own transaction (`lift_time_limits`).

    A limit of 0 is not sent at all: the server's own setting (none, or a DBA's `ALTER ROLE … SET`) applies,
    and a connection pooler that refuses unknown start-up parameters sees none."""
    limits = {"statement_timeout": statement, "idle_in_transaction_session_timeout": idle_in_transaction}
    return {name: str(max(1, round(seconds * 1000))) for name, seconds in limits.items() if seconds > 0}


# Both limits off until the transaction ends (SET LOCAL), in one statement and one round trip.
_NO_TIME_LIMITS = (
    "SELECT set_config('statement_timeout', '0', true), "
    "set_config('idle_in_transaction_session_timeout', '0', true)"
)


def lift_time_limits(connection: Connection) -> None:
    """Inside a transaction of `connection`: no statement timeout and no idle-in-transaction timeout until it
    ends, for work that is long on purpose (migrations and the wait for another process's, the start-up
    catalog load's lock, a catalog import, the purge). Nothing on SQLite."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_NO_TIME_LIMITS)


async def lift_session_time_limits(session: AsyncSession) -> None:
    """`lift_time_limits` for an ORM session's transaction."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text(_NO_TIME_LIMITS))


QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled (its timeout, or an operator)


def statement_cancelled(error: BaseException) -> bool:
    """PostgreSQL cancelled the statement (`statement_timeout`, `pg_cancel_backend`): through SQLAlchemy or
    straight from asyncpg. Nothing of the statement's transaction was written; trying again is safe."""
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        error = error.orig
    return getattr(error, "sqlstate", None) == QUERY_CANCELED


def database_busy(error: BaseException) -> bool:
    """The database could not serve this request now, and the same request a moment later may succeed:
    SQLite stayed locked (`is_busy`), the pool had no connection free in time, or PostgreSQL cancelled a
    statement that ran or waited too long. Also inside an exception group (task groups)."""
    if isinstance(error, BaseExceptionGroup):
        return any(database_busy(inner) for inner in error.exceptions)
    return is_busy(error) or isinstance(error, sa_exc.TimeoutError) or statement_cancelled(error)


def busy_reason(error: BaseException) -> str:
    """Which of `database_busy`'s cases this is, for the operator's log: no SQL, no parameters."""
    if isinstance(error, BaseExceptionGroup):
        return next((busy_reason(inner) for inner in error.exceptions if database_busy(inner)), "busy")
    if statement_cancelled(error):
        return "a statement ran or waited past SHINE_DB_STATEMENT_TIMEOUT_SECONDS"
    if isinstance(error, sa_exc.TimeoutError):
        return "no pooled connection came free in time"
    return "the database stayed locked"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


HAND_MANAGED_TABLES = ("products_fts", "catalog_version", "catalog_row_changes", "sqlite_sequence")
HAND_MANAGED_SEARCH = (  # PostgreSQL's full-text columns and their indexes
    "search_vector",
    "ix_products_search_vector",
    "name_vector",
    "ix_products_name_vector",
    "description_vector",
    "ix_products_description_vector",
)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave the dialect-specific objects managed by hand in the migrations (full-text index, catalog change
    tracking) out of comparisons."""
    if type_ == "table" and name is not None and name.startswith(HAND_MANAGED_TABLES):
        return False
    return not (type_ in ("column", "index") and name in HAND_MANAGED_SEARCH)


MIGRATION_LOCK_KEY = 0x5348494E45  # "SHINE": the advisory lock that lets one process at a time migrate
STARTUP_LOCK_KEY = MIGRATION_LOCK_KEY + 1  # `Database.one_process_at_a_time`


def _upgrade(connection: Connection, url: str) -> None:
    if connection.dialect.name == "postgresql":
        # A migration may rewrite a large table, and a worker waits here for as long as another one takes
        # to migrate: neither is cut short by the pool's statement timeout.
        lift_time_limits(connection)
        # Workers starting together would each create the same tables (one crashes on a duplicate key in
        # pg_type); the lock lasts until `Database.open`'s transaction ends, and whoever waited for it
        # then finds the schema current and does nothing.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")  # feature branches of migrations may run side by side


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """The configured database, opened (see `Database.open`)."""
    return await Database(settings).open(migrate=migrate)


async def _open(settings: Settings, *, migrate: bool) -> _Opened:
    url = settings.effective_database_url
    if url.startswith("sqlite") and ":memory:" not in url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    sqlite_file = _sqlite_file(url)
    gate = WriteGate() if sqlite_file is not None else None
    engine = create_engine(
        url,
        gate,
        pool_size=settings.db_pool_size,
        statement_timeout=settings.db_statement_timeout_seconds,
        idle_in_transaction_timeout=settings.db_idle_in_transaction_timeout_seconds,
    )
    if migrate:
        # Workers starting together on one SQLite file would each run the same migrations: one at a time.
        lock = _file_lock(sqlite_file) if sqlite_file is not None else contextlib.nullcontext()
        async with lock, engine.begin() as conn:
            await conn.run_sync(_upgrade, url)
    postgres = engine.dialect.name == "postgresql"
    reading = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
    return _Opened(
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        reading_sessions=async_sessionmaker(reading, expire_on_commit=False),
        threads=SqliteThreads(sqlite_file, gate) if sqlite_file is not None else None,
    )
