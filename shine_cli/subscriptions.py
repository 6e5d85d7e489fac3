"""`shine subscriptions`: refill subscriptions for the merchant. `advance` moves the simulated clock on (only
without Stripe keys) and bills every simulated subscription that falls due, so a shop can try refills with no
account: each paid refill becomes an order, as it would with Stripe. `list` shows them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import anyio
import typer
from rich.console import Console
from rich.table import Table

from shine_mcp.config import Settings

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
