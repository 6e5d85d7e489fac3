"""What a shopper does with refill subscriptions: subscribe (a recurring Checkout Session), change the interval
or quantity, skip the next delivery, pause, resume, cancel at the end of the period.

Changes go to the provider (Stripe Billing, or the simulated one) and the object it returns is applied as a
subscription snapshot at once, so the answer shows the change; the provider's webhook for the same change
then finds nothing new. Each call is keyed so a retry after a lost answer does the same change once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shine_mcp.config import Settings
from shine_mcp.identity import GUEST_PREFIX
from shine_mcp.integrations.billing import Billing, SubscriptionRequest, interval_params, quantity_params
from shine_mcp.integrations.payments import LineItem, PaymentError
from shine_mcp.orders import cart as carts
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.refills import IntervalSuggestion, suggest_interval
from shine_mcp.orders.subscriptions import (
    Snapshot,
    SubscriptionEvents,
    SubStatus,
    apply_snapshot,
)
from shine_mcp.store.catalog import get_product
from shine_mcp.store.db import Database
from shine_mcp.store.orders import new_id
from shine_mcp.store.subscriptions import (
    Subscription,
    get_subscription,
    insert_subscription,
    list_subscriptions,
)
from shine_mcp.store.tables import Product, ProductVariant, utcnow
from shine_mcp.store.users import User

log = logging.getLogger("shine.subscriptions")

MIN_WEEKS, MAX_WEEKS = 1, 26
REUSE_WITHIN = timedelta(hours=23)  # an unpaid subscription's link stays good (sessions last 24 h)


def discounted(price_minor: int, percent: int) -> int:
    """The unit price after the subscription discount, rounded to the nearest minor unit (half up)."""
    return (price_minor * (100 - percent) + 50) // 100


@dataclass(frozen=True)
class Plan:
    """What `subscribe` would start: shown to the shopper before they say yes."""

    product: Product
    variant: ProductVariant
    name: str
    quantity: int
    interval_weeks: int
    suggestion: IntervalSuggestion
    unit_price_minor: int  # after the discount
    discount_percent: int
    chosen: str | None  # which variant was picked when there was a choice

    @property
    def amount_minor(self) -> int:
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True)
class Started:
    subscription: Subscription
    reused: bool


class Subscriptions:
    def __init__(
        self,
        db: Callable[[], Database],
        billing: Callable[[], Billing],
        events: SubscriptionEvents,
        settings: Settings,
        gateway_kind: Callable[[], str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db, self._billing, self._events = db, billing, events
        self._settings, self._kind, self._clock = settings, gateway_kind, clock

    async def plan(
        self, product_id: str, quantity: int, variant_id: str | None, interval_weeks: int | None
    ) -> Plan:
        db = self._db()
        product = await get_product(db, product_id.strip())
        if product is None:
            raise OrderError(f"no product with id '{product_id}'; search_products lists product ids")
        variant, chosen = await carts.pick_variant(db, product, variant_id)
        name = carts.variant_name(product, variant)
        if variant.stock < quantity:
            left = f"only {variant.stock} left" if variant.stock > 0 else "out of stock"
            raise OrderError(f"{name} is {left}, so a refill cannot start now")
        suggestion = suggest_interval(product)
        weeks = interval_weeks or suggestion.weeks
        percent = self._settings.subscription_discount_percent
        return Plan(
            product,
            variant,
            name,
            quantity,
            weeks,
            suggestion,
            discounted(variant.price_minor, percent),
            percent,
            chosen,
        )

    async def start(self, user_id: str, plan: Plan) -> Started:
        """The subscription and its payment link; the same request again (a retry, a double yes) within a
        day returns the same unpaid subscription and link instead of a second one."""
        if user_id.startswith(GUEST_PREFIX):
            raise OrderError("a refill subscription needs an account: sign in first, then subscribe")
        db = self._db()
        items: list[dict[str, Any]] = [
            {
                "product_id": plan.product.id,
                "variant_id": plan.variant.id,
                "brand": plan.product.brand,
                "name": plan.name,
                "quantity": plan.quantity,
                "unit_price_minor": plan.unit_price_minor,
            }
        ]
        now = self._clock()
        for existing in await list_subscriptions(db, user_id, limit=20):
            if (
                existing.status == SubStatus.INCOMPLETE.value
                and existing.items == items
                and existing.interval_weeks == plan.interval_weeks
                and existing.checkout_url
                and now - existing.created_at < REUSE_WITHIN
            ):
                return Started(existing, reused=True)
        sub = Subscription(
            id=new_id("sub"),
            user_id=user_id,
            gateway=self._kind(),
            status=SubStatus.INCOMPLETE.value,
            currency=plan.variant.currency,
            items=items,
            interval_weeks=plan.interval_weeks,
            discount_percent=plan.discount_percent,
            email=await self._email(db, user_id),
            created_at=now,
            updated_at=now,
        )
        await insert_subscription(db, sub)
        page = f"{self._settings.base_url}/"  # back to the shop: list_subscriptions shows the new one
        request = SubscriptionRequest(
            subscription_id=sub.id,
            user_id=user_id,
            currency=sub.currency,
            lines=tuple(
                LineItem(
                    i["product_id"], f"{i['brand']} {i['name']}".strip(), i["unit_price_minor"], i["quantity"]
                )
                for i in items
            ),
            interval_weeks=sub.interval_weeks,
            success_url=page,
            cancel_url=page,
            customer_email=sub.email,
            shipping_countries=tuple(c.upper() for c in self._settings.shipping_countries),
        )
        try:
            session = await self._billing().create_subscription_session(
                request, idempotency_key=f"shine-subscribe-{sub.id}"
            )
        except PaymentError as exc:
            raise OrderError(f"the payment page could not be made: {exc.message}") from exc

        def attach(s: Subscription) -> None:
            s.checkout_session_id = s.checkout_session_id or session.id
            s.checkout_url = s.checkout_url or session.url

        await self._events.change(sub.id, attach)
        found = await get_subscription(db, sub.id)
        assert found is not None
        return Started(found, reused=False)

    async def _email(self, db: Database, user_id: str) -> str | None:
        async with db.session() as session:
            user = await session.get(User, user_id)
        return user.email if user is not None and user.email_verified else None

    async def own(self, user_id: str, sub_id: str) -> Subscription:
        sub = await get_subscription(self._db(), sub_id, user_id)
        if sub is None:
            raise OrderError(f"you have no subscription {sub_id!r}; list_subscriptions lists yours")
        return sub

    async def mine(self, user_id: str) -> list[Subscription]:
        return await list_subscriptions(self._db(), user_id)

    def _live(self, sub: Subscription, doing: str) -> str:
        """The provider's id of a subscription that can still change, or a refusal."""
        if sub.status == SubStatus.CANCELED.value:
            raise OrderError(
                f"subscription {sub.id} has ended, so it cannot {doing}; subscribe again instead"
            )
        if sub.provider_subscription_id is None:
            raise OrderError(
                f"subscription {sub.id} is not paid yet, so it cannot {doing}; its payment link is "
                f"{sub.checkout_url or 'not ready'}"
            )
        return sub.provider_subscription_id

    async def _update(
        self, sub: Subscription, provider_id: str, params: dict[str, object], key: str
    ) -> Subscription:
        try:
            updated = await self._billing().update_subscription(
                provider_id, params, idempotency_key=f"shine-sub-{sub.id}-{key}"
            )
        except PaymentError as exc:
            raise OrderError(f"the change could not be made: {exc.message}") from exc
        # The provider's answer is its state now, after every event it sent before: at least as new as the
        # newest one applied (whose time is the provider's clock, which may run ahead of this one).
        at = self._clock()
        if sub.snapshot_at is not None and sub.snapshot_at >= at:
            at = sub.snapshot_at + timedelta(milliseconds=1)
        snapshot = Snapshot.of(updated, at)
        await self._events.change(sub.id, lambda s: apply_snapshot(s, snapshot))
        found = await get_subscription(self._db(), sub.id)
        assert found is not None
        return found

    async def update(
        self,
        user_id: str,
        sub_id: str,
        *,
        interval_weeks: int | None = None,
        quantity: int | None = None,
        skip_next: bool = False,
    ) -> Subscription:
        sub = await self.own(user_id, sub_id)
        provider_id = self._live(sub, "change")
        if interval_weeks is None and quantity is None and not skip_next:
            raise OrderError("say what to change: interval_weeks, quantity or skip_next_delivery")
        billing = self._billing()
        try:
            current = await billing.retrieve_subscription(provider_id)
        except PaymentError as exc:
            raise OrderError(f"the subscription could not be read: {exc.message}") from exc
        if interval_weeks is not None and interval_weeks != sub.interval_weeks:
            sub = await self._update(
                sub, provider_id, interval_params(current, interval_weeks), f"every-{interval_weeks}w"
            )

            def interval(s: Subscription) -> None:
                s.interval_weeks = interval_weeks

            await self._events.change(sub.id, interval)
        if quantity is not None:
            sub = await self._update(
                sub, provider_id, quantity_params(current, quantity), f"quantity-{quantity}"
            )

            def quantities(s: Subscription) -> None:
                s.items = [{**item, "quantity": quantity} for item in s.items]

            await self._events.change(sub.id, quantities)
        if skip_next:
            sub = await self.own(user_id, sub_id)
            if sub.next_delivery is None:
                raise OrderError(f"subscription {sub.id} has no delivery coming, so there is none to skip")
            # Collection pauses until just after the next billing date: that period is not charged or sent.
            resumes = sub.next_delivery + timedelta(weeks=sub.interval_weeks) - timedelta(minutes=1)
            params: dict[str, object] = {
                "pause_collection": {"behavior": "void", "resumes_at": int(resumes.timestamp())}
            }
            sub = await self._update(sub, provider_id, params, f"skip-{int(sub.next_delivery.timestamp())}")
        return await self.own(user_id, sub_id)

    async def pause(self, user_id: str, sub_id: str, *, resume: bool = False) -> Subscription:
        sub = await self.own(user_id, sub_id)
        provider_id = self._live(sub, "resume" if resume else "pause")
        params: dict[str, object] = {"pause_collection": "" if resume else {"behavior": "void"}}
        stamp = int(self._clock().timestamp())
        return await self._update(sub, provider_id, params, f"{'resume' if resume else 'pause'}-{stamp}")

    async def end_all(self, user_id: str) -> int:
        """End every live subscription of a person at once (they are erasing their data: nothing more may be
        charged or sent to them). Raises when the provider cannot be reached, before anything is erased."""
        ended = 0
        for sub in await list_subscriptions(self._db(), user_id, limit=10_000):
            if sub.status == SubStatus.CANCELED.value:
                continue
            if sub.provider_subscription_id is None:  # never paid: nothing runs at the provider
                stamp = self._clock()

                def close(s: Subscription, at: datetime = stamp) -> None:
                    s.ended_at = s.ended_at or at

                await self._events.change(sub.id, close)
            else:
                try:
                    gone = await self._billing().cancel_now(sub.provider_subscription_id)
                except PaymentError as exc:
                    raise OrderError(
                        f"your refill subscription could not be stopped ({exc.message}); nothing was deleted, "
                        "try again in a moment"
                    ) from exc
                snapshot = Snapshot.of(gone, self._clock())

                def end(s: Subscription, snapshot: Snapshot = snapshot) -> None:
                    apply_snapshot(s, snapshot, deleted=True)

                await self._events.change(sub.id, end)
            ended += 1
        return ended

    async def cancel(self, user_id: str, sub_id: str) -> Subscription:
        sub = await self.own(user_id, sub_id)
        provider_id = self._live(sub, "be cancelled")
        return await self._update(sub, provider_id, {"cancel_at_period_end": True}, "cancel")
