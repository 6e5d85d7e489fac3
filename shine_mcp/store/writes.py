"""Writing to one SQLite file from many requests at once: the queue writers of this process take turns in
(`WriteGate`), and what a caller is told when the database stayed locked anyway (`DatabaseBusy`).

SQLite has one writer at a time. Left to its busy handler, connections that wait for the write lock poll it
with growing sleeps and in no order, while a transaction of the async engine holds the lock across awaits
(an ORM session: flush, a select, commit, each a trip through the event loop) for as long as a busy loop
takes to come back: under load some waiters give up with "database is locked" and the request fails.
Here every writer of the process waits for its turn in one first-come queue instead, and the busy handler
is left with other processes only (`shine mcp` beside `shine serve`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

log = logging.getLogger("shine.store")

BUSY_TIMEOUT_SECONDS = 5  # SQLite's own wait for the write lock, per try
WRITE_PATIENCE_SECONDS = 30.0  # how long a write waits for its turn before the caller is told it is busy
RETRY_AFTER_SECONDS = 2  # what a busy server asks clients to wait (Retry-After)


class DatabaseBusy(Exception):
    """The database stayed locked by other writers for longer than `WRITE_PATIENCE_SECONDS`: nothing was
    written. The web shell answers 503 with `Retry-After`; a chat reply already shown says it was not saved."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(
        self, message: str = f"the shop is busy; please try again in {RETRY_AFTER_SECONDS} s"
    ) -> None:
        super().__init__(message)


def is_busy(error: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY), wrapped by SQLAlchemy or not, or `DatabaseBusy`."""
    if isinstance(error, DatabaseBusy):
        return True
    if isinstance(error, sa_exc.OperationalError):
        error = error.orig if error.orig is not None else error
    return isinstance(error, sqlite3.OperationalError) and "is locked" in str(error)


@dataclass(eq=False)
class _Turn:
    owner: object
    future: asyncio.Future[None] | None = None  # a coroutine waits on this in its event loop...
    loop: asyncio.AbstractEventLoop | None = None
    event: threading.Event = field(default_factory=threading.Event)  # ...the writer thread on this
    thread: bool = False


def _grant(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WriteGate:
    """One writer at a time among this process's writers, in order of arrival: transactions of the async
    engine (hooked into SQLAlchemy's `before_cursor_execute`, awaiting with `await_` as SQLAlchemy documents
    for events) and batches of the writer thread (`SqliteThreads`), which waits here without the event
    loop. A turn passes on at commit or rollback (or when the connection goes back to the pool).

    The writer thread goes first when it waits: its units are a millisecond each and every request has one
    (its rate-limit count), while an async transaction holds its turn for several trips through the event
    loop. So a request waits for at most one async transaction, and an async writer for one thread batch.
    Reads never wait (WAL readers do not block the writer)."""

    def __init__(self, patience: float = WRITE_PATIENCE_SECONDS) -> None:
        self.patience = patience
        self._mutex = threading.Lock()  # the writer thread and the event loop both take turns
        self._holder: object | None = None
        self._waiting: deque[_Turn] = deque()

    def install(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before_execute)
        # The turn passes on as the transaction ends: the next writer's first statement reaches SQLite
        # while this COMMIT runs and waits for it in the busy handler, a moment instead of a loop trip.
        event.listen(sync, "commit", self._ended)
        event.listen(sync, "rollback", self._ended)
        event.listen(sync, "checkin", self._checkin)  # whatever else ends a checkout
        event.listen(sync, "invalidate", self._invalidated)

    # --- taking and giving turns ------------------------------------------------------------------
    async def acquire(self, owner: object) -> None:
        """Wait in the event loop for the turn to write; `DatabaseBusy` after `patience` seconds."""
        loop = asyncio.get_running_loop()
        with self._mutex:
            if self._holder is None and not self._waiting:
                self._holder = owner
                return
            turn = _Turn(owner, loop.create_future(), loop)
            self._waiting.append(turn)
        assert turn.future is not None
        try:
            done, _ = await asyncio.wait({turn.future}, timeout=self.patience)
        except BaseException:  # cancelled while waiting: hand on a turn that was just given
            if self._withdraw(turn):
                self.release(owner)
            raise
        if not done and not self._withdraw(turn):
            log.warning("waited %.0f s for the database's write lock; gave up", self.patience)
            raise DatabaseBusy()

    def acquire_blocking(self, owner: object) -> None:
        """The same from a thread (the writer thread): blocks it, never the event loop."""
        with self._mutex:
            if self._holder is None and not self._waiting:
                self._holder = owner
                return
            turn = _Turn(owner, thread=True)
            self._waiting.appendleft(turn)  # see the class docstring: the writer thread goes first
        if not turn.event.wait(self.patience) and not self._withdraw(turn):
            log.warning("the writer thread waited %.0f s for the write lock; gave up", self.patience)
            raise DatabaseBusy()

    def release(self, owner: object) -> None:
        """Give the turn on to the next waiter (from any thread); nothing when `owner` does not hold it."""
        with self._mutex:
            if self._holder is not owner:
                return
            self._holder = None
            if not self._waiting:
                return
            turn = self._waiting.popleft()
            self._holder = turn.owner  # decided here, under the mutex, whenever the waiter wakes up
        if turn.thread:
            turn.event.set()
        else:
            assert turn.loop is not None and turn.future is not None
            turn.loop.call_soon_threadsafe(_grant, turn.future)

    def _withdraw(self, turn: _Turn) -> bool:
        """Stop waiting; True when the turn had been given meanwhile (then the caller holds it)."""
        with self._mutex:
            if turn in self._waiting:
                self._waiting.remove(turn)
                return False
            return self._holder is turn.owner

    # --- the async engine's events ------------------------------------------------------------------
    def _before_execute(
        self,
        connection: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        owner = connection.info  # one dict per pooled DBAPI connection, also handed to `checkin`
        if self._holder is owner or not _writes(statement, context):
            return
        await_(self.acquire(owner))

    def _ended(self, connection: Connection) -> None:
        self.release(connection.info)

    def _checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            self.release(record.info)

    def _invalidated(self, dbapi_connection: Any, record: Any, _exception: BaseException | None) -> None:
        self._checkin(dbapi_connection, record)


_READ_STATEMENTS = ("SELECT", "PRAGMA", "EXPLAIN", "VALUES")


def _writes(statement: str, context: ExecutionContext | None) -> bool:
    head = statement.lstrip()[:8].upper()
    if head.startswith(_READ_STATEMENTS):
        return False
    if head.startswith("WITH"):  # a common table expression in front of a select, or of a write
        return any(getattr(context, flag, False) for flag in ("isinsert", "isupdate", "isdelete"))
    return bool(head)
