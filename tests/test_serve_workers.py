"""`shine serve --workers 2` on a fresh PostgreSQL database: both workers migrate, load the catalog and
start without tripping over each other, the port answers from them, and `/metrics` counts them all."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from shine_mcp.store.db import POSTGRES_POOL_SIZE
from tests.store.test_migration_lock import fresh_database
from tests.support.postgres import free_port
from tests.test_observability import samples

pytestmark = pytest.mark.slow

SHINE = str(Path(sys.executable).parent / "shine")
STARTED = "Application startup complete"


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """`process`'s stderr, line by line, from a reader thread (None at the end)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def serve_workers(data_dir: Path, port: int, workers: int = 2, **env: str) -> subprocess.Popen[str]:
    """`shine serve --workers N` on `port`, on `data_dir`, with none of this process's Shine, database or
    metrics settings and the given ones (`env`); its stderr piped, for `lines_of`."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SHINE_", "DATABASE_URL", "PROMETHEUS_"))
    }
    clean.update(SHINE_DATA_DIR=str(data_dir), SHINE_SECRET_KEY="workers-test-" + "k" * 32, **env)
    return subprocess.Popen(
        [SHINE, "serve", "--workers", str(workers), "--port", str(port)],
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_started_workers(lines: queue.Queue[str | None], workers: int, seen: list[str]) -> None:
    deadline = time.monotonic() + 120
    while sum(STARTED in line for line in seen) < workers:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if line is None:
            raise AssertionError("shine serve exited:\n" + "".join(seen))
        seen.append(line)


def start_two_workers_and_ask_health(data_dir: Path, **env: str) -> dict[str, Any]:
    """`shine serve --workers 2` on a fresh database: both start with no error logged, the port answers
    from them, and the demo catalog is loaded. Returns `/healthz`'s answer."""
    port = free_port()
    process = serve_workers(data_dir, port, **env)
    seen: list[str] = []
    try:
        wait_for_started_workers(lines_of(process), 2, seen)
        answers = [httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10) for _ in range(6)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = "".join(seen)
    assert "Traceback" not in log and "ERROR" not in log, log
    assert {a.status_code for a in answers} == {200}
    health: dict[str, Any] = answers[0].json()
    assert health["catalog_products"] >= 200  # the demo catalog, loaded once between the two
    return health


@pytest.mark.postgres
def test_two_workers_start_together_on_a_fresh_postgresql_and_answer(
    postgres_url: str, tmp_path: Path
) -> None:
    url = asyncio.run(fresh_database(postgres_url, "shine_workers"))

    health = start_two_workers_and_ask_health(tmp_path, DATABASE_URL=url)

    assert health["integrations"]["database"] == "postgresql"


async def healthz_on_fresh_connections(base: str, count: int) -> None:
    """`count` requests, 16 at a time, each on a connection of its own: the kernel hands the accepts to
    whichever worker is waiting, so both get some."""
    limit = anyio.Semaphore(16)

    async def one() -> None:
        async with limit, httpx.AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.get("/healthz", headers={"Connection": "close"})).status_code == 200

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(one)


@pytest.mark.postgres
def test_metrics_from_any_worker_count_the_requests_of_every_worker(
    postgres_url: str, tmp_path: Path
) -> None:
    url = asyncio.run(fresh_database(postgres_url, "shine_worker_metrics"))
    port = free_port()
    (tmp_path / "tmp").mkdir()
    # TMPDIR: where serve makes its metrics directory
    process = serve_workers(tmp_path, port, DATABASE_URL=url, TMPDIR=str(tmp_path / "tmp"))
    base = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    try:
        wait_for_started_workers(lines_of(process), 2, seen)
        asyncio.run(healthz_on_fresh_connections(base, 120))
        scrapes = [
            httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10) for _ in range(4)
        ]
    finally:
        process.terminate()
        process.wait(timeout=30)
    for scraped in scrapes:  # whichever worker answered
        assert scraped.status_code == 200
        per_worker = samples(scraped.text, "shine_worker_http_requests_total")
        assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
        requests = samples(scraped.text, "shine_http_requests_total")
        assert requests[frozenset({("route", "/healthz"), ("method", "GET"), ("status", "200")})] == 120
        # Each worker's database pool, labelled with its process id.
        pools = samples(scraped.text, "shine_db_pool_size")
        assert len({dict(labels)["pid"] for labels in pools}) == 2, pools
        assert set(pools.values()) == {float(POSTGRES_POOL_SIZE)}, pools
    assert not list((tmp_path / "tmp").glob("shine-metrics-*")), "the metrics files outlived serve"


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN on `port` (/proc/net/tcp: state 0A). A worker logs that its app started before its
    socket listens."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


async def healthz_on_connections_opened_together(port: int, count: int) -> None:
    """`count` connections opened at once, as clients starting together or a proxy's upstream pool open
    them, and then one request on each."""
    opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(count)))
    for _reader, writer in opened:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    for reader, writer in opened:
        answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        writer.close()


def test_connections_opened_together_are_spread_over_the_workers(tmp_path: Path) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads connections over
    them. With one shared socket the worker that woke first took every connection waiting: in a small load
    run all 11 clients sat on one of two workers and two workers did what one did."""
    port = free_port()
    (tmp_path / "tmp").mkdir()
    process = serve_workers(tmp_path, port, TMPDIR=str(tmp_path / "tmp"))  # SQLite: no database needed
    seen: list[str] = []
    try:
        wait_for_started_workers(lines_of(process), 2, seen)
        deadline = time.monotonic() + 30
        while listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening_sockets(port) == 2, "one listening socket per worker"
        asyncio.run(healthz_on_connections_opened_together(port, 24))
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Connection": "close"}, timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)
    per_worker = samples(scraped.text, "shine_worker_http_requests_total")
    assert len(per_worker) == 2, per_worker
    # 24 connections over two sockets by the kernel's hash: one worker with all of them has odds of 2 in 2**24.
    assert all(count >= 2 for count in per_worker.values()), per_worker


def test_a_worker_that_dies_is_replaced_on_its_own_socket(tmp_path: Path) -> None:
    """The supervisor starts a new worker in place of one that died, on the socket the dead one had: the
    connections the kernel sends to that socket are served again, not left in its queue."""
    port = free_port()
    (tmp_path / "tmp").mkdir()
    process = serve_workers(tmp_path, port, TMPDIR=str(tmp_path / "tmp"))
    seen: list[str] = []
    try:
        lines = lines_of(process)
        wait_for_started_workers(lines, 2, seen)
        workers = [
            int(child)
            for child in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        ]
        started = [
            pid for pid in workers if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        os.kill(started[0], signal.SIGKILL)
        wait_for_started_workers(lines, 3, seen)  # the replacement's app has started too
        deadline = time.monotonic() + 30
        while listening_sockets(port) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        asyncio.run(healthz_on_connections_opened_together(port, 24))
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Connection": "close"}, timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = "".join(seen)
    assert f"worker {started[0]} died: starting another on its socket" in log, log[-2000:]
    per_worker = samples(scraped.text, "shine_worker_http_requests_total")
    assert len(per_worker) == 2 and all(count >= 2 for count in per_worker.values()), per_worker


def worker_pids(supervisor: int) -> set[int]:
    """The serving workers under `shine serve`'s supervisor (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return {
        int(pid)
        for pid in children
        if Path(f"/proc/{pid}").exists()
        and "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()
    }


def test_sighup_replaces_every_worker_in_turn_without_refusing_a_request(tmp_path: Path) -> None:
    """`kill -HUP` (a deploy of new code or settings): each worker is replaced by a new one that serves on
    its socket before the old one stops, so requests arriving throughout are all answered."""
    port = free_port()
    (tmp_path / "tmp").mkdir()
    process = serve_workers(tmp_path, port, TMPDIR=str(tmp_path / "tmp"))
    seen: list[str] = []
    answered: list[int] = []
    failed: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while not stop.is_set():
                try:  # a fresh connection each time, so each lands on whichever socket the kernel picks
                    status = client.get("/healthz", headers={"Connection": "close"}).status_code
                except httpx.HTTPError as error:
                    failed.append(f"{type(error).__name__}: {error}")
                    continue
                (answered if status == 200 else failed).append(status)

    try:
        lines = lines_of(process)
        wait_for_started_workers(lines, 2, seen)
        before = worker_pids(process.pid)
        assert len(before) == 2
        asker = threading.Thread(target=keep_asking, daemon=True)
        asker.start()
        time.sleep(0.5)
        asked_before = len(answered)
        process.send_signal(signal.SIGHUP)
        wait_for_started_workers(lines, 4, seen)  # both successors' apps have started
        deadline = time.monotonic() + 60
        while worker_pids(process.pid) & before and time.monotonic() < deadline:
            time.sleep(0.1)
        after = worker_pids(process.pid)
        time.sleep(0.5)
        stop.set()
        asker.join(timeout=30)
        assert len(after) == 2 and not after & before, (before, after)
        assert listening_sockets(port) == 2
        asyncio.run(healthz_on_connections_opened_together(port, 24))
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=30)
    assert failed == [], failed[:5]
    assert len(answered) > asked_before + 10, "requests kept arriving during the restart"
