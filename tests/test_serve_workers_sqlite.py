"""`shine serve --workers 2` on a fresh SQLite data folder: the workers take turns to migrate the file and
load the demo catalog (a file lock beside the database), so both start and the catalog is loaded once.
Before, the second worker died on a duplicate product and took the server down with it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port
from tests.test_serve_workers import lines_of, serve_workers, wait_for_started_workers

pytestmark = pytest.mark.slow


def test_two_workers_start_together_on_a_fresh_sqlite_folder(tmp_path: Path) -> None:
    port = free_port()
    process = serve_workers(tmp_path, port)
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
    with closing(sqlite3.connect(tmp_path / "shine.db")) as connection:
        products, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT handle) FROM products"
        ).fetchone()
    assert products == distinct >= 200, "the demo catalog, loaded once between the two"
