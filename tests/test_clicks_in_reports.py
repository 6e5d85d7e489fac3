"""Affiliate click-outs in the merchant's reports: the sales report and `shine clicks report` count the clicks
recorded through `/out/{product_id}`, per product and per source, beside the shop's own sales."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import anyio
import pytest
from typer.testing import CliRunner

from shine_cli.cli import app
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from tests.checkout.conftest import CLEANSER, SERUM, Shop, in_own_task, open_shop, shop_settings

LINKS = {"amazon.com": {"tag": "shop-20"}, "boots.com": {}}
PAGE = "https://www.amazon.com/dp/B00TTD9BRC"


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    async with in_own_task(open_shop(shop_settings(settings.data_dir, affiliate_links=LINKS))) as opened:
        yield opened


async def click_out(shop: Shop) -> None:
    """Three clicks on the serum (two from the widget, one from an MCP client), one on the cleanser."""
    await shop.set_product(SERUM, buy_url=PAGE)
    await shop.set_product(CLEANSER, buy_url="https://www.boots.com/cleanser")
    for product, source in [(SERUM, "widget"), (SERUM, "mcp"), (SERUM, "widget"), (CLEANSER, "shop")]:
        assert (await shop.http.get(f"/out/{product}", params={"src": source})).status_code == 302


async def test_the_sales_report_counts_click_outs_per_product_and_source(shop: Shop) -> None:
    await click_out(shop)
    today = utcnow().date().isoformat()

    report = await shop.call("sales_report", {"start": today, "end": today})
    earlier = await shop.call("sales_report", {"start": "2026-01-01", "end": "2026-01-31"})

    clicks = report["click_outs"]
    assert clicks["clicks"] == 4 and clicks["by_source"] == {"mcp": 1, "shop": 1, "widget": 2}
    rows = [(r["product_id"], r["merchant"], r["clicks"], r["by_source"]) for r in clicks["products"]]
    assert rows == [
        (SERUM, "amazon.com", 3, {"mcp": 1, "widget": 2}),
        (CLEANSER, "boots.com", 1, {"shop": 1}),
    ]
    assert clicks["products"][0]["name"].startswith("Retinaldehyde")
    assert earlier["click_outs"]["clicks"] == 0 and earlier["click_outs"]["products"] == []


def cells(line: str) -> list[str]:
    """A printed table row's cells, without the box drawing."""
    return [cell.strip() for cell in re.split("[│┃]", line)[1:-1]] if re.match("[│┃]", line) else []


def shine_clicks(settings: Settings, *args: str) -> str:
    env = {
        "SHINE_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": None,
        "STRIPE_SECRET_KEY": None,
        "SHINE_SECRET_KEY": None,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["clicks", "report", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_shine_clicks_report_prints_the_clicks_per_product_and_source(shop: Shop) -> None:
    await click_out(shop)
    today = utcnow().date().isoformat()

    # The command runs its own event loop, as from a terminal: in a thread of its own here.
    printed = await anyio.to_thread.run_sync(shine_clicks, shop.settings, "--start", today, "--end", today)
    earlier = await anyio.to_thread.run_sync(
        shine_clicks, shop.settings, "--start", "2026-01-01", "--end", "2026-01-31"
    )

    rows = [cells(line) for line in printed.splitlines() if cells(line)]
    header = next(row for row in rows if row[0] == "product")
    serum = next(row for row in rows if row[0] == SERUM)
    cleanser = next(row for row in rows if row[0] == CLEANSER)
    total = next(row for row in rows if row[0] == "total")
    assert header[-5:] == ["clicks", "widget", "mcp", "shop", "link"]
    assert (
        serum[1] == "Naturium Retinaldehyde Cream Serum 0.10%"
        and serum[2] == "amazon.com"
        and serum[-5:] == ["3", "2", "1", "0", "0"]
    )
    assert cleanser[2] == "boots.com" and cleanser[-5:] == ["1", "0", "0", "1", "0"]
    assert rows.index(serum) < rows.index(cleanser)  # most clicked first
    assert total[-5:] == ["4", "2", "1", "1", "0"]
    assert "No clicks" in earlier and SERUM not in earlier


def test_shine_clicks_report_refuses_a_backwards_period(settings: Settings) -> None:
    result = CliRunner().invoke(
        app,
        ["clicks", "report", "--start", "2026-02-01", "--end", "2026-01-01"],
        env={"SHINE_DATA_DIR": str(settings.data_dir), "DATABASE_URL": None},
    )
    assert result.exit_code != 0 and "before" in result.output
