"""What a worker is doing right now, on request: `kill -USR1 <pid>` logs, at WARNING, every asyncio task's
stack, the stack of every thread, and the database pool's state with which task holds each connection and
for how long (an operator's answer to "a request hangs: what is it waiting for?").

Only code locations are logged (file, line, function and the source line), never arguments, local variables
or a task's result, so the dump carries no personal data. The handler is a plain `signal.signal` one: it
runs between two bytecodes of the main thread, so a loop stuck in synchronous code is dumped too (its
frame is the main thread's stack).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

from shine_mcp.store.db import Database

log = logging.getLogger("shine.dump")

DUMP_SIGNAL = signal.SIGUSR1
MAX_FRAMES = 40  # per task or thread: the innermost ones


class ConnectionHolders:
    """Which task checked out each pooled connection, and when: what a dump names as holding the pool."""

    def __init__(self) -> None:
        # id(connection record) → (the task, or the thread's name outside a loop; since; the record): named
        # at dump time
        self.held: dict[int, tuple[asyncio.Task[Any] | str, float, Any]] = {}
        self._pool: Pool | None = None

    def watch(self, db: Database) -> None:
        pool = db.engine.sync_engine.pool

        def checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
            self.held[id(record)] = (_holder(), time.monotonic(), record)

        def checked_in(_dbapi: Any, record: Any) -> None:
            self.held.pop(id(record), None)

        event.listen(pool, "checkout", checked_out)
        event.listen(pool, "checkin", checked_in)
        self._pool = pool

    def describe(self) -> list[str]:
        pool = self._pool
        if pool is None:
            return ["database pool: not open"]
        now = time.monotonic()
        lines = [f"database pool: {pool.status()}"]
        for holder, since, record in sorted(self.held.values(), key=lambda held: held[1]):
            name = holder if isinstance(holder, str) else f"task {_describe_task(holder)}"
            lines.append(f"  connection{_backend(record)} held {now - since:7.1f} s by {name}")
        lines += [f"  connection{_backend(record)} in the pool" for record in _idle(pool)]
        return lines


def _idle(pool: Pool) -> list[Any]:
    """A queue pool's connections not in use (threaded: a `queue.Queue`; async: an `asyncio.Queue` inside)."""
    waiting: Any = getattr(pool, "_pool", None)
    inner: Any = getattr(waiting, "queue", None)  # the threaded pool's deque
    if inner is None:
        inner = getattr(getattr(waiting, "_queue", None), "_queue", ())  # asyncio.Queue's deque
    return list(inner)


def _backend(record: Any) -> str:
    """The PostgreSQL backend behind a pooled connection (its pid is pg_stat_activity's), and whether the
    driver thinks it is inside a transaction; nothing on other drivers."""
    driver: Any = getattr(getattr(record, "dbapi_connection", None), "_connection", None)
    server_pid = getattr(driver, "get_server_pid", None)
    if server_pid is None:
        return ""
    try:
        described = f" (backend {server_pid()}, in transaction: {driver.is_in_transaction()}"
    except Exception:  # a closed or broken connection
        return " (backend unknown)"
    transport = getattr(driver, "_transport", None)
    if transport is not None and hasattr(transport, "get_write_buffer_size"):
        # bytes not yet sent to the server, and whether its replies are being read
        reading = transport.is_reading() if hasattr(transport, "is_reading") else "?"
        described += f", unsent bytes: {transport.get_write_buffer_size()}, reading: {reading}"
    return described + ")"


def _holder() -> asyncio.Task[Any] | str:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: a thread of its own
        task = None
    return task if task is not None else f"thread {threading.current_thread().name}"


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", type(coro).__name__)
    return f"{task.get_name()} [{name}]"


def _frames(frames: list[FrameType]) -> list[str]:
    summary = traceback.StackSummary.extract(
        ((f, f.f_lineno) for f in frames[-MAX_FRAMES:]), capture_locals=False
    )
    return [line.rstrip("\n") for line in summary.format()]


def _await_chain(task: asyncio.Task[Any]) -> list[FrameType]:
    """A task's frames from its coroutine down to what it waits for, following each `await` (a task's
    `get_stack` shows its outermost coroutine only)."""
    frames: list[FrameType] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 4 * MAX_FRAMES:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        frame = frame or getattr(awaited, "ag_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaited = next(
            (
                value
                for name in ("cr_await", "gi_yieldfrom", "ag_await")
                if (value := getattr(awaited, name, None)) is not None
            ),
            None,
        )
    return frames


def _thread_frames(frame: FrameType | None) -> list[FrameType]:
    frames: list[FrameType] = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames[::-1]  # outermost first, like a traceback


def dump_text(
    holders: ConnectionHolders | None,
    loop: asyncio.AbstractEventLoop | None,
    title: str = "what this worker is doing (SIGUSR1):",
) -> str:
    """The dump: the pool and its holders, each task's stack (innermost last), each thread's."""
    lines = [title]
    if holders is not None:
        lines += holders.describe()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()) if loop is not None else []
    lines.append(f"{len(tasks)} asyncio tasks:")
    for task in tasks:
        lines.append(f"- task {_describe_task(task)}")
        lines += ["  " + line for line in _frames(_await_chain(task))]
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"- thread {names.get(ident, ident)}")
        lines += ["  " + line for line in _frames(_thread_frames(frame))]
    return "\n".join(lines)


@contextmanager
def dump_on_signal(holders: ConnectionHolders) -> Iterator[None]:
    """While inside (the app's lifespan): SIGUSR1 logs `dump_text` of the running loop. Main thread only:
    elsewhere (a test client's thread) nothing is installed. `holders` watches the pool once the database
    is open (`Observers.database`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        try:
            log.warning("%s", dump_text(holders, loop))
        except Exception:  # a dump must never take the worker down
            log.exception("the SIGUSR1 dump failed")

    previous = signal.signal(DUMP_SIGNAL, handler)
    try:
        yield
    finally:
        signal.signal(DUMP_SIGNAL, previous)
