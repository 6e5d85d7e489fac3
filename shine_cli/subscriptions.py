"""`shine subscriptions`: refill subscriptions for the merchant. `advance` moves the simulated clock on (only
without Stripe keys) and bills every simulated subscription that falls due, so a shop can try refills with no
account: each paid refill becomes an order, as it would with Stripe. `list` shows them; `report` shows refills
and premium members side by side: active, monthly recurring revenue and churn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import anyio
import typer
from rich.console import Console
from rich.table import Table

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.money import format_money

subscriptions_app = typer.Typer(help="Refill subscriptions (subscribe and save).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

if TYPE_CHECKING:  # imported lazily at run time: `shine --help` stays fast
    from shine_mcp.orders.service import Commerce


@asynccontextmanager
async def _commerce(settings: Settings | None = None) -> AsyncIterator[Commerce]:
    from shine_mcp.orders.service import Commerce
    from shine_mcp.services import Services

    services = Services(settings or Settings())
    async with services.running():
        yield Commerce(services)


async def advance_clock(commerce: Commerce, days: float) -> int:
    """Move the simulated clock `days` on and bill what fell due; the number of invoices sent."""
    from shine_mcp.integrations.billing import SimulatedBilling

    billing = commerce.billing()
    if not isinstance(billing, SimulatedBilling):
        raise typer.BadParameter("the shop uses Stripe: Stripe's own clock bills its subscriptions")
    return await billing.advance(timedelta(days=days))


@subscriptions_app.command("advance")
def advance(
    days: Annotated[
        float, typer.Option("--days", min=0.0, max=3660.0, help="How far to move the clock.")
    ] = 30,
) -> None:
    """Simulated checkout only: move the subscriptions' clock on and bill every refill that falls due."""

    async def main() -> int:
        async with _commerce() as commerce:
            return await advance_clock(commerce, days)

    try:
        sent = anyio.run(main)
    except typer.BadParameter as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    out.print(f"Moved the simulated clock {days:g} days on: {sent} invoice(s) sent.")


@subscriptions_app.command("list")
def list_all(
    status: Annotated[
        str | None, typer.Option(help="Only this status (active, past_due, paused, …).")
    ] = None,
) -> None:
    """Every subscription with its status, interval and next delivery."""
    from sqlmodel import col, select

    from shine_mcp.store.subscriptions import Subscription, with_zones

    async def main() -> list[Subscription]:
        async with _commerce() as commerce:
            query = select(Subscription).order_by(col(Subscription.created_at).desc())
            if status:
                query = query.where(col(Subscription.status) == status)
            async with commerce.services.db.session() as session:
                return [with_zones(s) for s in (await session.execute(query)).scalars().all()]

    table = Table("subscription", "user", "status", "every", "items", "next delivery")
    for sub in anyio.run(main):
        items = ", ".join(
            f"{i['quantity']} × {i.get('brand', '')} {i.get('name', '')}".strip() for i in sub.items
        )
        when = f"{sub.next_delivery:%Y-%m-%d}" if sub.next_delivery else "-"
        table.add_row(sub.id, sub.user_id, sub.status, f"{sub.interval_weeks} wk", items, when)
    out.print(table)


@subscriptions_app.command("report")
def report(
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default: 30 days ago).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (default: today).")] = None,
    include_simulated: Annotated[bool, typer.Option(help="Count simulated subscriptions too.")] = False,
) -> None:
    """Refill subscriptions and premium members: active, monthly recurring revenue and churn (UTC days)."""
    from shine_mcp.integrations.billing import SimulatedBilling
    from shine_mcp.orders.report import Report, sales_report

    async def main(first: date | None) -> Report:
        async with _commerce() as commerce:
            billing = commerce.billing()
            now = billing.clock() if isinstance(billing, SimulatedBilling) else utcnow()
            last = date.fromisoformat(end) if end else now.date()
            first = first or last - timedelta(days=29)
            return await sales_report(commerce.db, first, last, include_simulated=include_simulated, now=now)

    try:
        first = date.fromisoformat(start) if start else None
        if end:
            date.fromisoformat(end)
    except ValueError as exc:
        raise typer.BadParameter("dates look like 2026-11-01") from exc
    result = anyio.run(main, first)
    title = f"{result.start} to {result.end}" + (" (simulated included)" if include_simulated else "")

    def churn(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}".replace("%", " %")

    refills = Table(
        "currency",
        "active",
        "at start",
        "ended",
        "churn",
        "monthly revenue",
        "due in 14 days",
        title=f"Refill subscriptions, {title}",
    )
    for currency, r in result.subscriptions.items():
        refills.add_row(
            currency,
            str(r.active),
            str(r.active_at_start),
            str(r.ended),
            churn(r.churn),
            format_money(r.mrr_minor, currency),
            f"{r.upcoming_refills} ({format_money(r.upcoming_minor, currency)})",
        )
    members = Table(
        "currency",
        "active",
        "joined",
        "ended",
        "churn",
        "monthly revenue",
        "at start",
        title=f"Premium members, {title}",
    )
    for currency, m in result.members.items():
        members.add_row(
            currency,
            str(m.active),
            str(m.joined),
            str(m.ended),
            churn(m.churn),
            format_money(m.mrr_minor, currency),
            str(m.active_at_start),
        )
    out.print(refills)
    out.print(members)
