"""The merchant's reports cover a period the admin can read: `sales_report` and `admin_clicks_report` refuse
a period that ends before it starts or runs past `MAX_DAYS`, in words that say how to fix it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shine_mcp.orders.checks import report_period_refusal
from shine_mcp.orders.report import MAX_DAYS
from tests.checkout.conftest import Shop

START = date(2026, 11, 1)


def test_a_period_of_up_to_max_days_is_accepted() -> None:
    assert report_period_refusal(START, START) is None
    assert report_period_refusal(START, START + timedelta(days=MAX_DAYS - 1)) is None


def test_a_backwards_or_too_long_period_says_how_to_fix_it() -> None:
    assert report_period_refusal(START, START - timedelta(days=1)) == (
        "end is before start; give the first day, then the last"
    )
    assert report_period_refusal(START, START + timedelta(days=MAX_DAYS)) == (
        f"at most {MAX_DAYS} days per report; split the period"
    )


@pytest.mark.parametrize("tool", ["sales_report", "admin_clicks_report"])
async def test_both_reports_refuse_a_period_they_cannot_cover(shop: Shop, tool: str) -> None:
    backwards = {"start": "2026-11-02", "end": "2026-11-01"}
    too_long = {"start": START.isoformat(), "end": (START + timedelta(days=MAX_DAYS)).isoformat()}
    assert "end is before start" in await shop.refused(tool, backwards)
    assert "split the period" in await shop.refused(tool, too_long)
    assert await shop.call(tool, {"start": "2026-11-01", "end": "2026-11-01"})
