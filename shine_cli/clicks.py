"""`shine clicks`: affiliate mode's report for the merchant, the "Buy at <merchant>" clicks per product and
source, as the `sales_report` and `admin_clicks_report` tools count them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated

import anyio
import typer
from rich.console import Console
from rich.table import Table

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings

if TYPE_CHECKING:  # imported lazily at run time: `shine --help` stays fast
    from shine_mcp.store.clicks import ClickCount

clicks_app = typer.Typer(help="Affiliate click-outs: which products send shoppers to which merchant.")
out = Console()
MAX_DAYS = 366


def _period(start: str | None, end: str | None) -> tuple[date, date]:
    try:
        last = date.fromisoformat(end) if end else utcnow().date()
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError as exc:
        raise typer.BadParameter("dates look like 2026-11-01") from exc
    if last < first:
        raise typer.BadParameter("the end is before the start; give the first day, then the last")
    if (last - first).days >= MAX_DAYS:
        raise typer.BadParameter(f"at most {MAX_DAYS} days per report; split the period")
    return first, last


async def _read(settings: Settings, first: date, last: date) -> list[ClickCount]:
    from shine_mcp.store.clicks import clicks_report
    from shine_mcp.store.db import open_database

    db = await open_database(settings)
    try:
        since = datetime.combine(first, time.min, UTC)
        return await clicks_report(db, since, datetime.combine(last + timedelta(days=1), time.min, UTC))
    finally:
        await db.close()


@clicks_app.command("report")
def report(
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default: 30 days ago).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (default: today).")] = None,
) -> None:
    """Clicks per product, merchant and source (widget, mcp, shop, link) in UTC days, most clicked first."""
    from shine_mcp.store.clicks import SOURCES

    first, last = _period(start, end)
    counts = anyio.run(_read, Settings(), first, last)
    if not counts:
        out.print(f"No clicks from {first} to {last}.")
        return
    table = Table(title=f"Clicks {first} to {last}")
    for column in ("product", "name", "merchant", "clicks", *SOURCES):
        table.add_column(column, justify="left" if column in ("product", "name", "merchant") else "right")
    totals: dict[str, int] = dict.fromkeys(SOURCES, 0)
    for count in counts:
        for source, n in count.by_source.items():
            totals[source] = totals.get(source, 0) + n
        table.add_row(
            count.product_id,
            f"{count.brand} {count.name}".strip() or "(no longer in the catalog)",
            count.merchant,
            str(count.total),
            *(str(count.by_source.get(source, 0)) for source in SOURCES),
        )
    table.add_row("total", "", "", str(sum(totals.values())), *(str(totals[s]) for s in SOURCES))
    out.print(table)
