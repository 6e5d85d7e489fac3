"""`shine serve --workers 2` on a fresh SQLite data folder: the workers take turns to migrate the file and
load the demo catalog (a file lock beside the database), so both start and the catalog is loaded once.
Before, the second worker died on a duplicate product and took the server down with it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.test_serve_workers import start_two_workers_and_ask_health

pytestmark = pytest.mark.slow


def test_two_workers_start_together_on_a_fresh_sqlite_folder(tmp_path: Path) -> None:
    health = start_two_workers_and_ask_health(tmp_path)

    assert health["integrations"]["database"] == "sqlite"
    with closing(sqlite3.connect(tmp_path / "shine.db")) as connection:
        products, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT handle) FROM products"
        ).fetchone()
    assert products == distinct >= 200, "the demo catalog, loaded once between the two"
