"""The mixed shopper workload of `benchmarks/bench_load.py`, small: chat turns, MCP browsing with checkout,
and signed webhooks at once, on one worker on SQLite and on two workers sharing one PostgreSQL database.
Nothing fails and nothing acknowledged goes missing from the database."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from benchmarks.bench_load import MixedReport, run_configuration
from tests.store.test_migration_lock import fresh_database

pytestmark = pytest.mark.slow

SMALL = dict(seconds=3.0, chat=2, mcp=4, webhooks=1, burst=60)


def assert_every_kind_ran_cleanly(report: MixedReport) -> None:
    load = report.load
    assert load.replies_completed > 0
    assert load.mcp_ok["search_products"] > 0 and load.mcp_ok["add_to_cart"] > 0
    assert report.orders_acknowledged, "some client checked out"
    assert len(report.events_acknowledged) > report.burst_events == SMALL["burst"]
    assert report.errors == 0, (dict(load.chat_errors), dict(load.mcp_errors), dict(report.webhook_errors))
    assert [s for s in load.statuses if s >= 500] == []
    # Every order checkout acknowledged, every turn a shopper saw, every event acknowledged as applied.
    assert report.orders_stored == len(report.orders_acknowledged)
    assert load.turns_stored == load.replies_shown and load.lost_turns == 0
    assert report.events_stored == report.paid_orders == len(report.events_acknowledged)
    assert report.lost_writes == 0


def test_one_sqlite_worker_under_mixed_load_loses_no_order_turn_or_event(
    tmp_path: Path, demo_database_template: Path
) -> None:
    shutil.copy(demo_database_template, tmp_path / "shine.db")

    report = run_configuration("SQLite", tmp_path, workers=1, database_url=None, **SMALL)  # type: ignore[arg-type]

    assert_every_kind_ran_cleanly(report)


@pytest.mark.postgres
def test_two_postgresql_workers_under_mixed_load_lose_no_order_turn_or_event(
    postgres_url: str, tmp_path: Path
) -> None:
    url = asyncio.run(fresh_database(postgres_url, "shine_load_mixed"))

    report = run_configuration("PostgreSQL", tmp_path, workers=2, database_url=url, **SMALL)  # type: ignore[arg-type]

    assert_every_kind_ran_cleanly(report)
