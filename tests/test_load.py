"""Shine under a small load on SQLite (the 30-second version is `benchmarks/bench_load_sqlite.py`): chat
shoppers and MCP clients at once get no HTTP 500, and every reply a shopper saw complete is stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.bench_load_sqlite import run_load

pytestmark = pytest.mark.slow


def test_ten_chat_shoppers_and_ten_mcp_clients_lose_no_turn_and_get_no_500(
    tmp_path: Path, demo_database_template: Path
) -> None:
    shutil.copy(demo_database_template, tmp_path / "shine.db")

    report = run_load(chat_clients=10, mcp_clients=10, seconds=5, data_dir=tmp_path)

    assert report.replies_completed > 0 and report.mcp_ok["add_to_cart"] > 0
    assert [s for s in report.statuses if s >= 500] == []
    assert report.turns_stored == report.replies_completed == report.replies_shown  # all shown is stored
    assert report.lost_turns == 0
    assert report.replies_told_not_saved == 0 and dict(report.chat_errors) == {}
    assert dict(report.mcp_errors) == {}
    assert report.locked_in_log == 0 and report.tracebacks_in_log == 0
