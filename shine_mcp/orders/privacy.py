"""A shopper's commerce data: what `export_my_data` shows and what `delete_my_data` erases.

Carts go entirely. Refill subscriptions are ended at the provider first, then kept like orders without
what names the person. Orders are bookkeeping records the merchant must keep (tax and accounting law), so
they stay with their amounts, lines and dates, but lose everything that names the buyer: the link to the
account, the email, the reason typed for a refund. The shipping address goes too, except on an order that
is paid but not yet shipped: the merchant still needs it to deliver what was bought, so it is kept until the
order ships (`shipped_at` set) and the order is flagged so the merchant knows to delete it then.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import col

from shine_mcp.clock import utcnow
from shine_mcp.orders.machine import DO_NOT_SHIP, Facts, Status, status_of
from shine_mcp.store.carts import Cart, CartItem
from shine_mcp.store.db import Database
from shine_mcp.store.memberships import Membership
from shine_mcp.store.orders import FulfilmentJob, Order, OrderLine, Refund, SimulatedSession
from shine_mcp.store.subscriptions import Subscription

ERASED_PREFIX = "erased_"
IN_FLIGHT_NOTE = "The buyer erased their data: delete the shipping address once this order has shipped."
# The fields of Stripe objects (Checkout Sessions, payment intents, charges, refunds, customers) that name
# or reach the buyer: emails, names, addresses, phone numbers.
PERSONAL_FIELDS = frozenset(
    {
        "customer_email",
        "customer_details",
        "collected_information",
        "shipping_details",
        "shipping",
        "billing_details",
        "receipt_email",
        "email",
        "name",
        "phone",
        "address",
    }
)


def without_personal_fields(value: Any) -> Any:
    """A stored provider payload with every personal field emptied, at any depth (the keys stay, as
    Stripe sends them, with null values)."""
    if isinstance(value, dict):
        return {
            key: None if key in PERSONAL_FIELDS else without_personal_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_personal_fields(item) for item in value]
    return value


def _plain(row: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    data = row.model_dump(mode="json")
    for name in drop:
        data.pop(name, None)
    return dict(data)


async def export_user_commerce(db: Database, user_id: str) -> dict[str, Any]:
    """The caller's cart, orders (with lines and refunds) and refill subscriptions, as JSON-ready dicts."""
    async with db.reading() as session:
        cart = (await session.execute(select(Cart).where(col(Cart.user_id) == user_id))).scalar_one_or_none()
        items = []
        if cart is not None:
            items = list(
                (await session.execute(select(CartItem).where(col(CartItem.cart_id) == cart.id))).scalars()
            )
        orders = list(
            (
                await session.execute(
                    select(Order).where(col(Order.user_id) == user_id).order_by(col(Order.created_at))
                )
            ).scalars()
        )
        order_ids = [o.id for o in orders]
        lines = list(
            (await session.execute(select(OrderLine).where(col(OrderLine.order_id).in_(order_ids)))).scalars()
        )
        refunds = list(
            (await session.execute(select(Refund).where(col(Refund.order_id).in_(order_ids)))).scalars()
        )
        subscriptions = list(
            (
                await session.execute(
                    select(Subscription)
                    .where(col(Subscription.user_id) == user_id)
                    .order_by(col(Subscription.created_at))
                )
            ).scalars()
        )
        memberships = list(
            (
                await session.execute(
                    select(Membership)
                    .where(col(Membership.user_id) == user_id)
                    .order_by(col(Membership.created_at))
                )
            ).scalars()
        )
    return {
        "subscriptions": [_plain(sub, drop=("lock_version",)) for sub in subscriptions],
        "memberships": [_plain(m, drop=("lock_version",)) for m in memberships],
        "cart": None
        if cart is None
        else {**_plain(cart), "items": [_plain(i, drop=("cart_id",)) for i in items]},
        "orders": [
            {
                # Internal bookkeeping (row lock counter, the merchant's notes) is not the buyer's data.
                **_plain(order, drop=("lock_version", "attention")),
                "lines": [_plain(line, drop=("order_id",)) for line in lines if line.order_id == order.id],
                "refunds": [
                    _plain(r, drop=("order_id", "user_id", "requested_by", "last_error"))
                    for r in refunds
                    if r.order_id == order.id
                ],
            }
            for order in orders
        ],
    }


def _awaiting_shipment(order: Order) -> bool:
    status = status_of(Facts.of(order))
    return order.paid_at is not None and order.shipped_at is None and status not in DO_NOT_SHIP


async def erase_user_commerce(db: Database, user_id: str) -> dict[str, int]:
    """Delete the cart, anonymise the orders. Returns counts for the confirmation shown to the user."""
    pseudonym = ERASED_PREFIX + secrets.token_hex(8)
    now = utcnow()
    counts = {"carts_deleted": 0, "orders_anonymised": 0, "addresses_kept_until_shipped": 0}
    async with db.session() as session:
        cart_ids = list(
            (await session.execute(select(col(Cart.id)).where(col(Cart.user_id) == user_id))).scalars()
        )
        if cart_ids:
            await session.execute(delete(CartItem).where(col(CartItem.cart_id).in_(cart_ids)))
            await session.execute(delete(Cart).where(col(Cart.id).in_(cart_ids)))
        counts["carts_deleted"] = len(cart_ids)
        orders = list((await session.execute(select(Order).where(col(Order.user_id) == user_id))).scalars())
        for order in orders:
            order.user_id = pseudonym
            order.email = None
            order.refund_reason = None
            if _awaiting_shipment(order):
                counts["addresses_kept_until_shipped"] += 1
                order.attention = IN_FLIGHT_NOTE
            else:
                order.shipping = None
            order.lock_version += 1
            order.updated_at = now
            session.add(order)
        counts["orders_anonymised"] = len(orders)
        for refund in (await session.execute(select(Refund).where(col(Refund.user_id) == user_id))).scalars():
            refund.user_id = pseudonym
            refund.reason = None if refund.source == "shine" else refund.reason
            session.add(refund)
        for job in (
            await session.execute(select(FulfilmentJob).where(col(FulfilmentJob.user_id) == user_id))
        ).scalars():
            job.user_id = pseudonym
            # Still to hand over: the partner needs the address to deliver, not the email. Handed over (or
            # abandoned): our copy of the address is no longer needed either.
            job.payload = {**job.payload, "email": None}
            if job.status != "pending":
                job.payload["ship_to"] = None
            session.add(job)
        # Subscriptions were ended at the provider first (`Subscriptions.end_all`): the rows stay for the
        # books, like orders, without what names the person.
        subscriptions = (
            await session.execute(select(Subscription).where(col(Subscription.user_id) == user_id))
        ).scalars()
        for sub in subscriptions:
            sub.user_id, sub.email, sub.shipping = pseudonym, None, None
            sub.lock_version += 1
            sub.updated_at = now
            session.add(sub)
            counts["subscriptions_anonymised"] = counts.get("subscriptions_anonymised", 0) + 1
        # Premium memberships too (ended at the provider first, `Memberships.end_all`).
        for membership in (
            await session.execute(select(Membership).where(col(Membership.user_id) == user_id))
        ).scalars():
            membership.user_id = pseudonym
            membership.lock_version += 1
            membership.updated_at = now
            session.add(membership)
            counts["memberships_anonymised"] = counts.get("memberships_anonymised", 0) + 1
        for simulated in (
            await session.execute(select(SimulatedSession).where(col(SimulatedSession.user_id) == user_id))
        ).scalars():
            simulated.user_id = pseudonym
            simulated.data = without_personal_fields(simulated.data)
            session.add(simulated)
        await session.commit()
    return counts


def erased(user_id: str) -> bool:
    return user_id.startswith(ERASED_PREFIX)


__all__ = ["Status", "erase_user_commerce", "erased", "export_user_commerce", "without_personal_fields"]
