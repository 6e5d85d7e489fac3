"""`kill -USR1 <pid>` on `shine serve` logs what the worker is doing: every asyncio task's stack and the
database pool, naming the task that holds each connection (issue 20: "a request hangs, what is it doing?")."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import anyio
import pytest

from shine_mcp.config import Settings
from shine_mcp.store.db import Database
from tests.store.test_migration_lock import fresh_database
from tests.support.postgres import free_port
from tests.test_serve_workers import lines_of, serve_workers, wait_for_started_workers
from web_shell.task_dump import ConnectionHolders, dump_text


async def test_the_dump_names_the_task_that_holds_a_pooled_connection(tmp_path: Path) -> None:
    db = await Database(
        Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db")
    ).open()
    holders = ConnectionHolders()
    holders.watch(db)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.engine.connect():
            holding.set()
            await release.wait()

    try:
        task = asyncio.create_task(hold(), name="holds-a-connection")
        with anyio.fail_after(10):
            await holding.wait()
        text = dump_text(holders, asyncio.get_running_loop())
        release.set()
        await task
        after = dump_text(holders, asyncio.get_running_loop())
    finally:
        await db.close()
    assert "Checked out connections: 1" in text or "checked out: 1" in text.lower(), text
    assert "by task holds-a-connection [" in text
    # its stack shows where it waits
    assert "await release.wait()" in text
    assert "by task holds-a-connection" not in after


def test_sigusr1_makes_a_serving_worker_log_its_tasks_and_pool(tmp_path: Path) -> None:
    port = free_port()
    process = serve_workers(tmp_path, port, workers=1)
    seen: list[str] = []
    try:
        lines = lines_of(process)
        wait_for_started_workers(lines, 1, seen)
        process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 60
        while not any(line.startswith("- thread ") for line in seen):
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))  # queue.Empty past the bound
            if line is None:
                raise AssertionError("shine serve exited:\n" + "".join(seen))
            seen.append(line)
        assert process.poll() is None  # still serving
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = "".join(seen)
    assert "WARNING" in log and "what this worker is doing (SIGUSR1):" in log, log
    assert "database pool: " in log
    assert "asyncio tasks:" in log and "- task " in log


@pytest.mark.postgres
@pytest.mark.slow
def test_sigusr1_to_shine_serve_reaches_every_worker(postgres_url: str, tmp_path: Path) -> None:
    url = asyncio.run(fresh_database(postgres_url, "shine_task_dump"))
    port = free_port()
    process = serve_workers(tmp_path, port, DATABASE_URL=url)
    seen: list[str] = []
    try:
        lines = lines_of(process)
        wait_for_started_workers(lines, 2, seen)
        process.send_signal(signal.SIGUSR1)  # to the supervisor, which passes it on
        deadline = time.monotonic() + 60
        while sum("what this worker is doing (SIGUSR1):" in line for line in seen) < 2:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))  # queue.Empty past the bound
            if line is None:
                raise AssertionError("shine serve exited:\n" + "".join(seen))
            seen.append(line)
        assert process.poll() is None  # the supervisor is still serving
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = "".join(seen)
    # each pooled connection named by its PostgreSQL backend, to match pg_stat_activity's pid
    # (held by a start-up job or idle in the pool, whichever it is at the moment of the signal)
    assert re.search(r"connection \(backend \d+, in transaction: (True|False)", log), log
