"""What a shopper does with refill subscriptions: subscribe (a recurring Checkout Session), change the interval
or quantity, skip the next delivery, pause, resume, cancel at the end of the period.

Changes go to the provider (Stripe Billing, or the simulated one) and the object it returns is applied as a
subscription snapshot at once, so the answer shows the change; the provider's webhook for the same change
then finds nothing new. A new interval is booked for the end of the period already paid (Stripe would
otherwise start a new billing cycle, charged at once), so the next refill keeps its date. Each call is keyed so a retry after a lost answer does the same change once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shine_mcp.auth.identity import GUEST_PREFIX
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.billing import (
    Billing,
    SubscriptionRequest,
    interval_params,
    items_of,
    quantity_params,
)
from shine_mcp.integrations.payments import LineItem, PaymentError
from shine_mcp.integrations.proration import preview_total
from shine_mcp.money import from_stripe_amount, stripe_amount
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
from shine_mcp.store.tables import Product, ProductVariant
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

    @property
    def currency(self) -> str:
        return self.variant.currency

    def items(self) -> list[dict[str, Any]]:
        return [_item(self.product, self.variant, self.name, self.quantity, self.unit_price_minor)]


def _item(product: Product, variant: ProductVariant, name: str, quantity: int, unit: int) -> dict[str, Any]:
    """One line of a subscription as stored: what is sent and charged every period."""
    return {
        "product_id": product.id,
        "variant_id": variant.id,
        "brand": product.brand,
        "name": name,
        "quantity": quantity,
        "unit_price_minor": unit,
    }


@dataclass(frozen=True)
class RoutineLine:
    product: Product
    variant: ProductVariant
    name: str
    suggestion: IntervalSuggestion
    unit_price_minor: int  # after the discount


@dataclass(frozen=True)
class RoutinePlan:
    """What `subscribe_to_routine` would start: a routine's products together in one subscription (one
    charge and one parcel each period). The interval is the shortest of the products' own suggestions, so
    none runs out before the next parcel; the ones that last longer are named."""

    lines: tuple[RoutineLine, ...]
    interval_weeks: int
    discount_percent: int

    @property
    def currency(self) -> str:
        return self.lines[0].variant.currency

    @property
    def amount_minor(self) -> int:
        return sum(line.unit_price_minor for line in self.lines)

    @property
    def suggested_weeks(self) -> int:
        return min(line.suggestion.weeks for line in self.lines)

    @property
    def short_basis(self) -> str:
        each = ", ".join(
            f"{line.product.brand} {line.name} about {line.suggestion.weeks}" for line in self.lines
        )
        return f"every {self.suggested_weeks} weeks, the shortest of the products' own estimates in weeks ({each})"

    @property
    def basis(self) -> str:
        """The short basis, then how each product's estimate was worked out."""
        each = "; ".join(f"{line.product.brand} {line.name}: {line.suggestion.basis}" for line in self.lines)
        return f"{self.short_basis}. {each}"

    @property
    def lasting_longer(self) -> list[RoutineLine]:
        """The products that last at least twice the interval: they would pile up."""
        return [line for line in self.lines if line.suggestion.weeks >= 2 * self.interval_weeks]

    def items(self) -> list[dict[str, Any]]:
        return [_item(line.product, line.variant, line.name, 1, line.unit_price_minor) for line in self.lines]


@dataclass(frozen=True)
class Swap:
    """A product or variant swap quoted before the shopper says yes."""

    subscription: Subscription
    plan: Plan
    provider_id: str
    items: list[dict[str, Any]]  # Stripe's `items[n][id|price_data]`
    proration_date: int
    total_minor: int  # the proration: negative when the new product costs less (a credit)
    due_now_minor: int  # charged at once

    @property
    def credit_minor(self) -> int:
        return max(0, -self.total_minor)


@dataclass(frozen=True)
class Started:
    subscription: Subscription
    reused: bool


class Subscriptions:
    def __init__(
        self,
        db: Database,
        billing: Callable[[], Billing],
        events: SubscriptionEvents,
        settings: Settings,
        gateway_kind: Callable[[], str],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db, self._billing, self._events = db, billing, events
        self._settings, self._kind, self._clock = settings, gateway_kind, clock
        self.billing_now: Callable[[], datetime] = (
            clock  # the provider's time (the simulated clock without Stripe)
        )

    async def plan(
        self, product_id: str, quantity: int, variant_id: str | None, interval_weeks: int | None
    ) -> Plan:
        db = self._db
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

    async def plan_routine(self, product_ids: list[str], interval_weeks: int | None) -> RoutinePlan:
        """One of each product (its only, or first in-stock, size), every `interval_weeks` or the suggestion."""
        db = self._db
        lines: list[RoutineLine] = []
        percent = self._settings.subscription_discount_percent
        for product_id in dict.fromkeys(p.strip() for p in product_ids):
            product = await get_product(db, product_id)
            if product is None:
                raise OrderError(
                    f"no product with id '{product_id}'; build_routine lists the routine's products"
                )
            variant, _ = await carts.pick_variant(db, product, None)
            name = carts.variant_name(product, variant)
            if variant.stock < 1:
                raise OrderError(
                    f"{product.brand} {name} is out of stock, so the routine's refills cannot start now; "
                    "leave it out and subscribe to the others"
                )
            line = RoutineLine(
                product, variant, name, suggest_interval(product), discounted(variant.price_minor, percent)
            )
            lines.append(line)
        if len(lines) < 2:
            raise OrderError("a routine's refills need at least two products; use subscribe for one product")
        currencies = sorted({line.variant.currency for line in lines})
        if len(currencies) > 1:
            raise OrderError(
                f"these products are priced in different currencies ({', '.join(currencies)}), so they cannot "
                "be charged together; subscribe to them one by one"
            )
        weeks = interval_weeks or min(line.suggestion.weeks for line in lines)
        return RoutinePlan(tuple(lines), weeks, percent)

    async def start(self, user_id: str, plan: Plan | RoutinePlan) -> Started:
        """The subscription and its payment link; the same request again (a retry, a double yes) within a
        day returns the same unpaid subscription and link instead of a second one."""
        if user_id.startswith(GUEST_PREFIX):
            raise OrderError("a refill subscription needs an account: sign in first, then subscribe")
        db = self._db
        items = plan.items()
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
            currency=plan.currency,
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
        async with db.reading() as session:
            user = await session.get(User, user_id)
        return user.email if user is not None and user.email_verified else None

    async def own(self, user_id: str, sub_id: str) -> Subscription:
        sub = await get_subscription(self._db, sub_id, user_id)
        if sub is None:
            raise OrderError(f"you have no subscription {sub_id!r}; list_subscriptions lists yours")
        return sub

    async def mine(self, user_id: str) -> list[Subscription]:
        return await list_subscriptions(self._db, user_id)

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
        return await self._applied(sub, updated)

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
        if quantity is not None:
            sub = await self._update(
                sub, provider_id, quantity_params(current, quantity), f"quantity-{quantity}"
            )

            def quantities(s: Subscription) -> None:
                s.items = [{**item, "quantity": quantity} for item in s.items]

            await self._events.change(sub.id, quantities)
        if interval_weeks is not None and interval_weeks != sub.interval_weeks:
            sub = await self._book_interval(sub, provider_id, interval_weeks)

            def interval(s: Subscription) -> None:
                s.interval_weeks = interval_weeks

            await self._events.change(sub.id, interval)
        elif quantity is not None:
            sub = await self._keep_booked_interval(sub, provider_id)
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

    async def _book_interval(self, sub: Subscription, provider_id: str, weeks: int) -> Subscription:
        """A new interval from the end of the period already paid: a price with another billing period would
        reset the billing cycle at once (a new period, charged now), so the change is booked for the period's
        end (a subscription schedule's next phase, as Stripe documents). The next refill keeps its date."""
        billing = self._billing()
        try:
            current = await billing.retrieve_subscription(provider_id)
            items = interval_params(current, weeks)["items"]
            for item, now in zip(items, items_of(current), strict=True):
                item["quantity"] = int(now.get("quantity") or 1)
            booked = ",".join(f"{i['id']}x{i['quantity']}" for i in items)
            key = f"shine-sub-{sub.id}-every-{weeks}w-{hashlib.sha256(booked.encode()).hexdigest()[:12]}"
            updated = await billing.change_at_period_end(provider_id, items, idempotency_key=key)
        except PaymentError as exc:
            raise OrderError(f"the change could not be made: {exc.message}") from exc
        return await self._applied(sub, updated)

    async def _keep_booked_interval(self, sub: Subscription, provider_id: str) -> Subscription:
        """After a change of the items now, an interval booked for the period's end is booked again with
        them (the booking names the items as they were)."""
        try:
            current = await self._billing().retrieve_subscription(provider_id)
        except PaymentError as exc:
            raise OrderError(f"the subscription could not be read: {exc.message}") from exc
        wanted = {"interval": "week", "interval_count": sub.interval_weeks}
        if all(dict((i.get("price") or {}).get("recurring") or {}) == wanted for i in items_of(current)):
            return sub
        return await self._book_interval(sub, provider_id, sub.interval_weeks)

    async def _applied(self, sub: Subscription, updated: dict[str, Any]) -> Subscription:
        """The provider's answer is its state now, after every event it sent before: applied as a snapshot at
        least as new as the newest event applied (whose time is the provider's clock, which may run ahead)."""
        at = self._clock()
        if sub.snapshot_at is not None and sub.snapshot_at >= at:
            at = sub.snapshot_at + timedelta(milliseconds=1)
        snapshot = Snapshot.of(updated, at)
        await self._events.change(sub.id, lambda s: apply_snapshot(s, snapshot))
        found = await get_subscription(self._db, sub.id)
        assert found is not None
        return found

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
        for sub in await list_subscriptions(self._db, user_id, limit=10_000):
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
        try:  # an interval booked for the period's end goes first: a scheduled subscription is not cancelled directly
            await self._billing().release_schedule(provider_id)
        except PaymentError as exc:
            raise OrderError(f"the subscription could not be cancelled: {exc.message}") from exc
        return await self._update(sub, provider_id, {"cancel_at_period_end": True}, "cancel")

    async def quote_swap(
        self, user_id: str, sub_id: str, product_id: str | None, variant_id: str | None
    ) -> Swap:
        """What swapping the subscription's product (or variant) would cost now: the provider's proration
        preview (the new price for the rest of the period, less the old one's unused part). Nothing changes."""
        sub = await self.own(user_id, sub_id)
        provider_id = self._live(sub, "change")
        if len(sub.items) != 1:
            raise OrderError(
                f"subscription {sub.id} delivers several products; cancel it and subscribe to the new set instead"
            )
        product_id = product_id or str(sub.items[0]["product_id"])  # only the variant: the same product
        plan = await self.plan(product_id, int(sub.items[0]["quantity"]), variant_id, sub.interval_weeks)
        if plan.variant.id == sub.items[0].get("variant_id"):
            raise OrderError(f"subscription {sub.id} already delivers {plan.name}")
        if plan.variant.currency != sub.currency:
            raise OrderError(
                f"{plan.name} is priced in {plan.variant.currency}, this subscription in {sub.currency}"
            )
        billing = self._billing()
        try:
            current = await billing.retrieve_subscription(provider_id)
        except PaymentError as exc:
            raise OrderError(f"the subscription could not be read: {exc.message}") from exc
        unit = stripe_amount(plan.unit_price_minor, sub.currency)
        items = [
            {
                "id": item["id"],
                "price_data": {
                    "currency": (item.get("price") or {}).get("currency") or sub.currency.lower(),
                    "product": (item.get("price") or {}).get("product"),
                    "unit_amount": unit,
                    "recurring": dict((item.get("price") or {}).get("recurring") or {}),
                },
            }
            for item in items_of(current)
        ]
        # One proration date for the preview and the change (the hour's start, within the period), so the
        # shopper is charged what they were shown.
        start = max(int(i.get("current_period_start") or 0) for i in items_of(current))
        at = max(start, int(self.billing_now().replace(minute=0, second=0, microsecond=0).timestamp()))
        try:
            preview = await billing.preview_change(provider_id, items, at)
        except PaymentError as exc:
            raise OrderError(f"the price of the swap could not be worked out: {exc.message}") from exc
        total, due = preview_total(preview)
        return Swap(
            sub,
            plan,
            provider_id,
            items,
            at,
            from_stripe_amount(total, sub.currency),
            from_stripe_amount(due, sub.currency),
        )

    async def swap(self, user_id: str, swap: Swap) -> Subscription:
        """Swap the product at once with proration invoiced now (`always_invoice`, the previewed date): the
        next refills are the new product at its subscription price."""
        await self.own(user_id, swap.subscription.id)
        params = {
            "items": swap.items,
            "proration_behavior": "always_invoice",
            "proration_date": swap.proration_date,
        }
        sub = await self._update(
            swap.subscription, swap.provider_id, params, f"swap-{swap.plan.variant.id}-{swap.proration_date}"
        )
        plan = swap.plan

        def swapped(s: Subscription) -> None:
            s.items = [
                {
                    "product_id": plan.product.id,
                    "variant_id": plan.variant.id,
                    "brand": plan.product.brand,
                    "name": plan.name,
                    "quantity": plan.quantity,
                    "unit_price_minor": plan.unit_price_minor,
                }
            ]

        await self._events.change(sub.id, swapped)
        await self._keep_booked_interval(await self.own(user_id, sub.id), swap.provider_id)
        return await self.own(user_id, sub.id)
