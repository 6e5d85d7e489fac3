"""Refunds: a shopper asks (within the return window), an admin gives money back through the provider.

A refund is written down before the provider is called, and its id is the provider's idempotency key: when
the provider does not answer, calling again retries that same refund rather than making a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import col, update

from shine_mcp.config import Settings
from shine_mcp.integrations.payments import PaymentError, PaymentGateway
from shine_mcp.money import format_money
from shine_mcp.orders import machine
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.ledger import Ledger
from shine_mcp.orders.machine import Status
from shine_mcp.store.db import Database
from shine_mcp.store.orders import Order, Refund, get_order, new_id, refunds_of

COUNTED = ("pending", "succeeded")  # money the provider has committed to give back


class Refunds:
    def __init__(
        self,
        db: Database,
        gateway: Callable[[], PaymentGateway],
        ledger: Ledger,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self._db, self._gateway, self._ledger = db, gateway, ledger
        self._settings, self._clock = settings, clock

    async def request(self, user_id: str, order_id: str, reason: str) -> Order:
        """The buyer asks for their money back; the merchant decides (refund_order)."""
        order = await get_order(self._db, order_id, user_id)
        if order is None:
            raise OrderError(f"you have no order {order_id!r}; list_orders lists yours")
        if order.paid_at is None:
            raise OrderError(f"order {order_id} was never paid; cancel_order closes an unpaid order")
        if order.status == Status.REFUNDED.value:
            raise OrderError(f"order {order_id} has already been refunded in full")
        if order.refund_requested_at is not None:
            return order  # asked before: asking again changes nothing
        days = self._settings.return_window_days
        start = order.shipped_at or order.paid_at
        ends = start + timedelta(days=days)
        if self._clock() > ends:
            raise OrderError(
                f"the {days}-day return window for order {order_id} ended on {ends.date().isoformat()}; "
                "contact the shop directly"
            )
        applied = await self._ledger.apply(order.id, machine.RefundRequested(at=self._clock(), reason=reason))
        if applied.order is None:
            raise AssertionError("the order vanished")
        return applied.order

    async def refund(self, admin_id: str, order_id: str, amount_minor: int | None) -> tuple[Order, Refund]:
        """Give back `amount_minor` (default: everything not refunded yet) of a paid order."""
        db = self._db
        order = await get_order(db, order_id)
        if order is None:
            raise OrderError(f"there is no order {order_id!r}")
        if order.paid_at is None:
            raise OrderError(
                f"order {order_id} is {order.status}: nothing was paid, so nothing can be refunded"
            )
        if order.payment_intent_id is None:
            raise OrderError(
                f"the payment of order {order_id} has no provider id yet (its confirmation has not arrived); "
                "try again in a minute"
            )
        rows = await refunds_of(db, order.id)
        unconfirmed = [r for r in rows if r.status == "creating"]
        done = max(order.amount_refunded_minor, sum(r.amount_minor for r in rows if r.status in COUNTED))
        currency = order.currency

        def money(minor: int) -> str:
            return format_money(minor, currency)

        if unconfirmed:
            row = unconfirmed[0]
            if amount_minor is not None and amount_minor != row.amount_minor:
                raise OrderError(
                    f"a refund of {money(row.amount_minor)} on order {order_id} is not confirmed yet; call "
                    f"refund_order again with that amount (or none) to finish it before another one"
                )
        else:
            remaining = order.total_minor - done
            amount = remaining if amount_minor is None else amount_minor
            if remaining <= 0:
                raise OrderError(f"order {order_id} has already been refunded in full ({money(done)})")
            if amount <= 0 or amount > remaining:
                raise OrderError(
                    f"at most {money(remaining)} of order {order_id} can still be refunded "
                    f"({money(done)} of {money(order.total_minor)} already was)"
                )
            row = Refund(
                id=new_id("rfd"),
                order_id=order.id,
                user_id=order.user_id,
                amount_minor=amount,
                currency=order.currency,
                status="creating",
                source="shine",
                reason="issued by the shop",
                requested_by=admin_id,
                created_at=self._clock(),
                updated_at=self._clock(),
            )
            async with db.session() as session:
                session.add(row)
                await session.commit()
        try:
            result = await self._gateway().refund(
                payment_intent=order.payment_intent_id,
                amount=row.amount_minor,
                currency=order.currency,
                idempotency_key=f"shine-refund-{row.id}",
                metadata={"order_id": order.id, "refund_id": row.id},
            )
        except PaymentError as exc:
            if exc.retryable:
                raise OrderError(
                    f"{exc.message}. The refund is recorded as unconfirmed; call refund_order again: it retries "
                    "this same refund and can never pay back twice"
                ) from exc
            await self._update(row.id, status="failed", last_error=exc.message[:500])
            raise OrderError(f"the refund was refused: {exc.message}") from exc
        status = result.status if result.status in COUNTED else "failed"
        await self._update(row.id, status=status, gateway_refund_id=result.id)
        rows = await refunds_of(db, order.id)
        total = sum(r.amount_minor for r in rows if r.status in COUNTED)
        applied = await self._ledger.apply(order.id, machine.Refunded(at=self._clock(), total_refunded=total))
        refund = next(r for r in rows if r.id == row.id)
        if status == "failed":
            raise OrderError(f"the provider did not make the refund (status {result.status})")
        if applied.order is None:
            raise AssertionError("the order vanished")
        return applied.order, refund

    async def _update(self, refund_id: str, **values: object) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(Refund).where(col(Refund.id) == refund_id).values(updated_at=self._clock(), **values)
            )
            await session.commit()
