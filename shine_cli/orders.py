"""`shine orders`: what a merchant needs day to day. See what waits for fulfilment (the local queue when
no partner is configured), mark orders shipped, retry a failed hand-over, run the fulfilment worker on its
own, list orders and refund requests, and print the sales report."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from rich.table import Table

from shine_mcp.config import Settings

orders_app = typer.Typer(help="Orders, fulfilment and sales for the merchant.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

if TYPE_CHECKING:  # imported lazily at run time: `shine --help` stays fast
    from shine_mcp.orders.service import Commerce


@asynccontextmanager
async def _commerce() -> AsyncIterator[Commerce]:
    from shine_mcp.orders.service import Commerce
    from shine_mcp.services import Services

    services = Services(Settings())
    async with services.running():
        yield Commerce(services)


def _run(work: Callable[[Commerce], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _commerce() as commerce:
            return await work(commerce)

    return anyio.run(main)


def _money(minor: int, currency: str) -> str:
    from shine_mcp.money import format_money

    return format_money(minor, currency)


def _address(ship_to: dict[str, Any] | None) -> str:
    if not ship_to:
        return "(no address collected)"
    address = ship_to.get("address") or {}
    parts = [ship_to.get("name"), address.get("line1"), address.get("line2"), address.get("city")]
    parts += [address.get("state"), address.get("postal_code"), address.get("country")]
    return ", ".join(str(p) for p in parts if p)


_HELD = {
    "oversold": "HELD: sold out before payment;\nrestock and ship it, or refund it",
    "amount_mismatch": "HELD: amount paid ≠ total;\ncheck the payment first",
    "awaiting_address": "WAITING: refill paid before its\naddress arrived; sent when it does",
}


@dataclass(frozen=True)
class _Waiting:
    """One paid order waiting for the merchant: its outbox job, or its hold (never sent to fulfilment)."""

    order: Any
    state: str  # local | failed | pending | held
    request: dict[str, Any]
    detail: str | None


def _held_request(order: Any, lines: list[Any]) -> dict[str, Any]:
    """What a fulfilment request would hold, for an order kept out of the outbox."""
    return {
        "order_id": order.id,
        "hold_reason": order.hold_reason,
        "placed_at": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "currency": order.currency,
        "total_minor": order.total_minor,
        "items": [
            {"product_id": x.product_id, "brand": x.brand, "name": x.name, "quantity": x.quantity}
            for x in lines
        ],
        "email": order.email,
        "ship_to": order.shipping,
    }


@orders_app.command("pending-fulfilment")
def pending_fulfilment(
    as_json: Annotated[bool, typer.Option("--json", help="Print the fulfilment requests as JSON.")] = False,
) -> None:
    """Paid orders not shipped yet: orders held for you (sold out before payment), the local queue,
    hand-overs that failed, and those still being retried."""
    from shine_mcp.store.orders import get_order, held_orders, jobs, order_lines

    async def work(commerce: Commerce) -> list[_Waiting]:
        db = commerce.db
        held = await held_orders(db)
        lines = await order_lines(db, [o.id for o in held])
        found = [_Waiting(o, "held", _held_request(o, lines[o.id]), o.attention) for o in held]
        for job in await jobs(db, ["local", "failed", "pending"], limit=1000):
            order = await get_order(db, job.order_id)
            if (
                order is not None
                and order.shipped_at is None
                and order.status not in ("refunded", "disputed")
            ):
                found.append(_Waiting(order, job.status, job.payload, job.last_error))
        return found

    found = _run(work)
    if as_json:
        rows = [{"fulfilment": w.state, "last_error": w.detail, **w.request} for w in found]
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if not found:
        out.print("Nothing waits for fulfilment.")
        return
    table = Table(title=f"{len(found)} paid orders to ship")
    for column in ("order", "paid", "items", "ship to", "email", "state"):
        table.add_column(column)
    for waiting in found:
        order = waiting.order
        items = "\n".join(
            f"{i['quantity']} × {i['brand']} {i['name']}" for i in waiting.request.get("items", [])
        )
        if waiting.state == "held":
            state = _HELD.get(order.hold_reason, f"HELD: {order.hold_reason}")
        else:
            state = {
                "local": "ship it yourself",
                "failed": "partner refused",
                "pending": "sending to partner",
            }[waiting.state]
            if waiting.detail:
                state += f"\n{waiting.detail}"
        paid = order.paid_at.strftime("%Y-%m-%d %H:%M") if order.paid_at else ""
        ship_to = _address(waiting.request.get("ship_to"))
        table.add_row(order.id, paid, items, ship_to, order.email or "", state)
    out.print(table)
    out.print("Mark one shipped: shine orders mark-shipped ORDER_ID --tracking NUMBER")
    if any(w.state == "held" for w in found):
        out.print("Refund a held one: the refund_order tool (or the payment provider's dashboard).")


@orders_app.command("mark-shipped")
def mark_shipped(
    order_id: Annotated[str, typer.Argument(help="The order, e.g. ord_….")],
    tracking: Annotated[str, typer.Option(help="The carrier's tracking number.")],
    carrier: Annotated[str | None, typer.Option(help="UPS, DHL, USPS, …")] = None,
) -> None:
    """Record that you shipped an order yourself (from the local queue)."""
    from shine_mcp.clock import utcnow
    from shine_mcp.orders import machine
    from shine_mcp.store.orders import get_order

    async def work(commerce: Commerce) -> str:
        order = await get_order(commerce.db, order_id)
        if order is None:
            return f"no order {order_id}"
        if order.paid_at is None:
            return f"order {order_id} is {order.status}: only paid orders ship"
        event = machine.Shipped(at=utcnow(), tracking_number=tracking, carrier=carrier)
        applied = await commerce.ledger.apply(
            order_id, event, dedupe=("merchant", f"{order_id}:{tracking}", "shipped")
        )
        return "" if applied.order or applied.duplicate else f"no order {order_id}"

    problem = _run(work)
    if problem:
        err.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    out.print(f"Order {order_id} marked shipped ({carrier or 'carrier not given'} {tracking}).")


@orders_app.command("retry-fulfilment")
def retry_fulfilment(order_id: Annotated[str, typer.Argument(help="The order, e.g. ord_….")]) -> None:
    """Send a failed (or locally queued) order to the fulfilment partners again, from the first one."""
    from sqlalchemy import update
    from sqlmodel import col

    from shine_mcp.clock import utcnow
    from shine_mcp.store.orders import FulfilmentJob

    async def work(commerce: Commerce) -> int:
        async with commerce.db.session() as session:
            changed = await session.execute(
                update(FulfilmentJob)
                .where(
                    col(FulfilmentJob.order_id) == order_id,
                    col(FulfilmentJob.status).in_(["failed", "local"]),
                )
                .values(
                    status="pending", partner_index=0, attempts=0, next_attempt_at=utcnow(), lease_until=None
                )
            )
            await session.commit()
        return int(getattr(changed, "rowcount", 0) or 0)

    if not _run(work):
        err.print(f"[red]order {order_id} has no failed or queued fulfilment to retry[/red]")
        raise typer.Exit(1)
    out.print(f"Order {order_id} will be sent again by the fulfilment worker.")


@orders_app.command("work")
def work_forever() -> None:
    """Run the fulfilment worker in this process (with SHINE_FULFILMENT_WORKER=false on `shine serve`)."""
    from shine_mcp.orders.fulfilment import FulfilmentWorker

    async def work(commerce: Commerce) -> None:
        worker = FulfilmentWorker(
            commerce.db, commerce.ledger, commerce.settings, housekeeping=commerce.housekeeping
        )
        err.print("Delivering paid orders to fulfilment; Ctrl-C stops.")
        await worker.run()

    try:
        _run(work)
    except KeyboardInterrupt:
        err.print("stopped")


@orders_app.command("list")
def list_all(
    status: Annotated[str | None, typer.Option(help="Only this status, e.g. paid or refunded.")] = None,
    refund_requests: Annotated[
        bool, typer.Option(help="Only orders whose buyer asked for a refund.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 30,
) -> None:
    """Recent orders of every customer, newest first, with anything that needs your attention."""
    from shine_mcp.store.orders import list_orders

    async def work(commerce: Commerce) -> list[Any]:
        statuses = [status] if status else None
        return await list_orders(
            commerce.db, None, statuses=statuses, limit=limit, refund_requested=refund_requests
        )

    rows = _run(work)
    table = Table(title=f"{len(rows)} orders")
    for column in ("order", "created", "status", "total", "refunded", "attention"):
        table.add_column(column)
    for order in rows:
        attention = order.attention or ""
        if order.refund_reason:
            attention = f"refund asked: {order.refund_reason}" + (f"; {attention}" if attention else "")
        table.add_row(
            order.id,
            order.created_at.strftime("%Y-%m-%d %H:%M"),
            order.status + (" (simulated)" if order.gateway == "simulated" else ""),
            _money(order.total_minor, order.currency),
            _money(order.amount_refunded_minor, order.currency) if order.amount_refunded_minor else "",
            attention,
        )
    out.print(table)


@orders_app.command("report")
def report(
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (default: 30 days ago).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (default: today).")] = None,
    include_simulated: Annotated[bool, typer.Option(help="Count simulated-checkout orders too.")] = False,
) -> None:
    """Orders, revenue, refunds and net per day and currency (UTC days)."""
    from shine_mcp.clock import utcnow
    from shine_mcp.orders.report import sales_report

    try:
        last = date.fromisoformat(end) if end else utcnow().date()
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError as exc:
        raise typer.BadParameter("dates look like 2026-11-01") from exc
    result = _run(
        lambda commerce: sales_report(commerce.db, first, last, include_simulated=include_simulated)
    )
    table = Table(title=f"Sales {first} to {last}" + (" (simulated included)" if include_simulated else ""))
    for column in ("day", "currency", "orders", "revenue", "refunds", "net"):
        table.add_column(column, justify="right" if column not in ("day", "currency") else "left")
    for (day, currency), tally in result.days.items():
        table.add_row(
            day.isoformat(),
            currency,
            str(tally.orders),
            _money(tally.revenue_minor, currency),
            _money(tally.refunds_minor, currency),
            _money(tally.net_minor, currency),
        )
    for currency, tally in result.totals.items():
        table.add_row(
            "total",
            currency,
            str(tally.orders),
            _money(tally.revenue_minor, currency),
            _money(tally.refunds_minor, currency),
            _money(tally.net_minor, currency),
        )
    out.print(table)
