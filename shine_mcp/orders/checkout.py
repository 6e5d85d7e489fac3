"""Checkout: a cart version becomes one order and one payment session, however often it is asked for.

Idempotency has two layers. The database: an order is unique per (cart, cart version), so two checkouts of
the same cart (a retry, a double click, two processes) agree on one order. The provider: the session is
created with an idempotency key derived from that order, from parameters read back from the stored order,
so a retry after a timeout, a 500 or a crash gets the same session instead of a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import col, select

from shine_mcp.auth.identity import GUEST_PREFIX
from shine_mcp.config import Settings
from shine_mcp.integrations.payments import (
    CheckoutSession,
    LineItem,
    PaymentError,
    PaymentGateway,
    SessionRequest,
)
from shine_mcp.orders import cart as carts
from shine_mcp.orders import machine
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.ledger import Ledger
from shine_mcp.orders.machine import Status
from shine_mcp.orders.return_links import TOKEN_PARAM, sign_return
from shine_mcp.store.carts import read_cart
from shine_mcp.store.db import Database
from shine_mcp.store.orders import (
    Order,
    OrderLine,
    find_order,
    get_order,
    insert_order,
    new_id,
    order_for_cart,
    order_lines,
    with_zones,
)
from shine_mcp.store.users import User

log = logging.getLogger("shine.orders")

SESSION_ID_TEMPLATE = "{CHECKOUT_SESSION_ID}"


@dataclass(frozen=True)
class CheckoutOutcome:
    order: Order
    lines: list[OrderLine]
    reused: bool  # this cart version had been checked out before: same order, same link
    replaced: tuple[str, ...] = ()  # older unpaid orders of this cart, closed so they cannot be paid too


def member_price(price_minor: int, percent: int) -> int:
    """A premium member's unit price: `percent` off, rounded to the nearest minor unit (half up)."""
    return (price_minor * (100 - percent) + 50) // 100


def idempotency_key(order_id: str) -> str:
    return f"shine-checkout-{order_id}"


def return_url(value: str | None, settings: Settings, default: str, what: str) -> str:
    """A page Stripe sends the shopper back to: this Shine or one of the shop's allowed origins only, so
    a checkout link can never bounce people to someone else's site."""
    if not value:
        return default
    parts = urlsplit(value)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {urlsplit(settings.base_url)._replace(path="", query="", fragment="").geturl().lower()}
    allowed |= {o.rstrip("/").lower() for o in settings.allowed_origins}
    allowed |= {f"https://{h}".lower() for h in settings.allowed_hosts}
    if parts.scheme not in ("http", "https") or not parts.netloc or origin not in allowed:
        raise OrderError(
            f"{what} must be a page of this shop ({', '.join(sorted(allowed))}); leave it out to use Shine's own"
        )
    if len(value) > 1500:
        raise OrderError(f"{what} is too long (at most 1500 characters)")
    return value


async def _email(db: Database, user_id: str) -> str | None:
    if user_id.startswith(GUEST_PREFIX):
        return None
    async with db.reading() as session:
        user = await session.get(User, user_id)
    return user.email if user is not None and user.email_verified else None


def session_request(order: Order, lines: list[OrderLine], settings: Settings) -> SessionRequest:
    return SessionRequest(
        order_id=order.id,
        user_id=order.user_id,
        currency=order.currency,
        lines=tuple(
            LineItem(
                line.product_id, f"{line.brand} {line.name}".strip(), line.unit_price_minor, line.quantity
            )
            for line in lines
        ),
        success_url=order.success_url,
        cancel_url=order.cancel_url,
        customer_email=order.email,
        shipping_countries=tuple(c.upper() for c in settings.shipping_countries),
    )


async def attach_session(db: Database, order_id: str, session: CheckoutSession) -> None:
    """Remember the provider's session on the order (first one wins: there is only ever one)."""
    async with db.session() as s:
        await s.execute(
            update(Order)
            .where(col(Order.id) == order_id, col(Order.checkout_session_id).is_(None))
            .values(
                checkout_session_id=session.id,
                checkout_url=session.url,
                session_expires_at=session.expires_at,
            )
        )
        await s.commit()


def session_event(session: CheckoutSession, at: datetime) -> machine.Event | None:
    """What a session's own state says about its order (for reads, when no webhook has told us yet)."""
    if session.paid:
        return machine.Paid(
            at=at,
            payment_intent=session.payment_intent,
            session_id=session.id,
            amount_total=session.amount_total,
            currency=session.currency,
            email=session.customer_email,
            shipping=session.shipping,
        )
    if session.status == "expired":
        return machine.Expired(at=at)
    return None


def cancel_refusal(order: Order) -> str | None:
    """Why this order cannot be cancelled (only unpaid ones can), or None."""
    if machine.can_cancel(Status(order.status)):
        return None
    hint = "; request_refund asks for your money back" if order.paid_at else ""
    return f"order {order.id} is {order.status.replace('_', ' ')}, so it cannot be cancelled{hint}"


class Checkout:
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
        # Premium member prices: the percent off for this person now (asked at each checkout, never stored).
        self.member_discount: Callable[[str], Awaitable[int]] | None = None

    async def checkout(
        self, user_id: str, success_url: str | None = None, cancel_url: str | None = None
    ) -> CheckoutOutcome:
        for _ in range(3):  # a stale session ends its order and frees the cart: then once more
            outcome = await self._checkout_once(user_id, success_url, cancel_url)
            if outcome is not None:
                return outcome
        raise OrderError("the cart kept changing during checkout; try again")

    async def _checkout_once(
        self, user_id: str, success_url: str | None, cancel_url: str | None
    ) -> CheckoutOutcome | None:
        db = self._db
        snapshot = await read_cart(db, user_id)
        priced = await carts.price_cart(db, snapshot)
        if snapshot is None or not priced.lines:
            raise OrderError("your cart is empty; add_to_cart adds products first")
        problems = priced.problems()
        if problems:
            raise OrderError("cannot check out yet: " + "; ".join(problems))
        changes = priced.price_changes()
        if changes:
            await carts.confirm_prices(db, user_id)
            raise OrderError(
                "prices changed since you added these: "
                + "; ".join(changes)
                + ". The cart now shows the current prices; call checkout again to pay them."
            )
        order = await order_for_cart(db, snapshot.id, snapshot.version)
        reused = order is not None
        if order is None:
            percent = await self.member_discount(user_id) if self.member_discount is not None else 0
            units = [member_price(line.unit_price_minor, percent) for line in priced.lines]
            order_id = new_id("ord")
            base = self._settings.base_url
            # Shine's own return pages show the order only to its owner: the signed token says who that is.
            signed = (
                f"order_id={order_id}&{TOKEN_PARAM}={sign_return(order_id, self._settings, self._clock())}"
            )
            order = Order(
                id=order_id,
                user_id=user_id,
                cart_id=snapshot.id,
                cart_version=snapshot.version,
                gateway=self._gateway().kind,
                status=Status.PENDING.value,
                currency=priced.currency or "USD",
                total_minor=sum(u * line.quantity for u, line in zip(units, priced.lines, strict=True)),
                email=await _email(db, user_id),
                success_url=return_url(
                    success_url,
                    self._settings,
                    f"{base}/checkout/success?session_id={SESSION_ID_TEMPLATE}&{signed}",
                    "success_url",
                ),
                cancel_url=return_url(
                    cancel_url, self._settings, f"{base}/checkout/cancel?{signed}", "cancel_url"
                ),
                created_at=self._clock(),
                updated_at=self._clock(),
            )
            lines = [
                OrderLine(
                    order_id=order_id,
                    position=i,
                    product_id=line.product_id,
                    variant_id=line.variant_id,
                    brand=line.product.brand if line.product else "",
                    name=line.name[:300] if line.product else line.product_id,
                    unit_price_minor=units[i],
                    quantity=line.quantity,
                )
                for i, line in enumerate(priced.lines)
            ]
            if not await insert_order(db, order, lines):
                # A concurrent checkout of this very cart version won the insert: use its order.
                order, reused = await order_for_cart(db, snapshot.id, snapshot.version), True
                if order is None:
                    raise AssertionError("the order that won the insert is gone")
        lines = (await order_lines(db, [order.id]))[order.id]
        if order.status != Status.PENDING.value:
            return CheckoutOutcome(order, lines, reused=True)
        if order.gateway != self._gateway().kind:
            # Made before the shop switched between simulated and real payments: its link is dead.
            await self._ledger.apply(order.id, machine.Cancelled(at=self._clock()))
            return None
        fresh = await self._ensure_session(order, lines)
        if fresh is None:
            return None  # its session had expired: the cart moved on, start again
        replaced = await self._close_older(fresh)
        return CheckoutOutcome(fresh, lines, reused=reused, replaced=replaced)

    async def _ensure_session(self, order: Order, lines: list[OrderLine]) -> Order | None:
        gateway = self._gateway()
        if order.checkout_session_id is None:
            try:
                session = await gateway.create_session(
                    session_request(order, lines, self._settings), idempotency_key=idempotency_key(order.id)
                )
            except PaymentError as exc:
                again = " (your order is kept: checking out again will not create a second one)"
                raise OrderError(exc.message + (again if exc.retryable else "")) from exc
            await attach_session(self._db, order.id, session)
        elif order.session_expires_at is not None and order.session_expires_at <= self._clock():
            await self.refresh(order)
        current = await get_order(self._db, order.id)
        if current is None:
            raise AssertionError("the order vanished")
        if current.status == Status.PENDING.value:
            return current
        if current.status in {s.value for s in machine.UNPAID_ENDINGS}:
            return None
        return current  # it turned out paid

    async def refresh(self, order: Order) -> Order:
        """Ask the provider about a pending order's session and apply what it says (used when a webhook
        may have been missed: a stale session, the success page, a cancel that raced a payment)."""
        if order.checkout_session_id is None or order.status != Status.PENDING.value:
            return order
        try:
            session = await self._gateway().retrieve_session(order.checkout_session_id)
        except PaymentError as exc:
            log.warning("could not refresh order %s from the provider: %s", order.id, exc.message)
            return order
        event = session_event(session, self._clock())
        if event is None:
            return order
        applied = await self._ledger.apply(order.id, event)
        return applied.order or order

    async def recover(self, session_id: str, *, unattached: str | None = None) -> Order | None:
        """The order behind a session id, brought up to date from the provider.

        Only sessions Shine stored on an order are looked up at the provider, so made-up ids cost nothing
        there. `unattached` names the order whose session this is when this process stopped after creating
        the session and before storing its id; the caller has checked it (a signed return link), and the
        provider must agree (the session's `client_reference_id`)."""
        db = self._db
        order = await find_order(db, session_id=session_id)
        if order is None:
            order = await get_order(db, unattached) if unattached else None
            if order is None or order.checkout_session_id is not None:
                return None
        elif order.status != Status.PENDING.value:
            return order
        try:
            session = await self._gateway().retrieve_session(session_id)
        except PaymentError:
            return order if order.checkout_session_id == session_id else None
        if order.checkout_session_id is None:
            if session.id != session_id or session.client_reference_id != order.id:
                return None
            await attach_session(db, order.id, session)
        event = session_event(session, self._clock())
        if event is not None:
            order = (await self._ledger.apply(order.id, event)).order or order
        return order

    async def _close_older(self, order: Order) -> tuple[str, ...]:
        """Older unpaid orders of the same cart: expire their sessions so only the newest can be paid."""
        async with self._db.reading() as s:
            older = list(
                (
                    await s.execute(
                        select(Order).where(
                            col(Order.cart_id) == order.cart_id,
                            col(Order.cart_version) < order.cart_version,
                            col(Order.status) == Status.PENDING.value,
                        )
                    )
                ).scalars()
            )
        closed: list[str] = []
        for old in (with_zones(o) for o in older):
            try:
                await self.cancel(old.user_id, old.id)
                closed.append(old.id)
            except OrderError as exc:
                log.info("left order %s as it is: %s", old.id, exc.message)
        return tuple(closed)

    async def cancel(self, user_id: str, order_id: str) -> Order:
        db = self._db
        order = await get_order(db, order_id, user_id)
        if order is None:
            raise OrderError(f"you have no order {order_id!r}; list_orders lists yours")
        refusal = cancel_refusal(order)
        if refusal:
            raise OrderError(refusal)
        if order.checkout_session_id is not None:
            try:
                session = await self._gateway().expire_session(order.checkout_session_id)
            except PaymentError as exc:
                raise OrderError(
                    f"could not close the payment page, so the order stays open: {exc.message}"
                ) from exc
            if session.paid:
                event = session_event(session, self._clock())
                if event is not None:
                    await self._ledger.apply(order.id, event)
                raise OrderError(
                    f"order {order_id} was just paid, so it cannot be cancelled; request_refund instead"
                )
        applied = await self._ledger.apply(order.id, machine.Cancelled(at=self._clock()))
        if applied.order is None:
            raise AssertionError("the order vanished")
        return applied.order
