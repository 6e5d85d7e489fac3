"""Premium membership: what a shopper does with it (join, switch plan, cancel, the payment-methods page) and the
premium check every benefit asks. Its facts and the provider's events live in
`shine_mcp.orders.membership_events`.

Premium is never granted once and forgotten: `Memberships.premium` is asked on every request that gives a
member something, and answers from the membership's facts, which only the provider's events (and its answers
to Shine's own changes) move forward, as for refill subscriptions (`shine_mcp.orders.subscriptions`):

- the newest subscription object (by its event's time): status, plan (its price's interval), cancel at the
  period's end, the period's end;
- the latest paid and failed invoice, and the end.

So replays and any delivery order give the same membership. A member stays premium while the membership is
active or past due (the provider is retrying the card) and its paid period has not run out; a cancelled one
ends at the end of the period already paid for, whether or not the provider's last event has arrived yet.

Plan changes follow Stripe's documented way: an upgrade (monthly → yearly) changes the price at once with
`proration_behavior=always_invoice` (the unused month is credited, the year charged, as Stripe computes and
the preview showed); a downgrade (yearly → monthly) is a subscription schedule whose next phase, from the end
of the paid year, bills monthly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shine_mcp.auth.identity import GUEST_PREFIX
from shine_mcp.config import Settings
from shine_mcp.integrations.billing import Billing, SubscriptionRequest, items_of, price_items
from shine_mcp.integrations.payments import LineItem, PaymentError
from shine_mcp.integrations.proration import preview_total
from shine_mcp.money import from_stripe_amount, stripe_amount
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.membership_events import (
    INTERVAL,
    METADATA_KEY,
    MembershipEvents,
    MemberStatus,
    Plan,
    Snapshot,
    apply_snapshot,
    benefits,
    is_premium,
)
from shine_mcp.store.db import Database
from shine_mcp.store.memberships import Membership, get_membership, insert_membership, memberships_of
from shine_mcp.store.orders import new_id
from shine_mcp.store.users import User

log = logging.getLogger("shine.membership")

REUSE_WITHIN = timedelta(hours=23)
__all__ = ["MembershipEvents", "Memberships", "Plan", "PlanChange", "benefits", "is_premium"]


# --- what a shopper does ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanChange:
    """What changing plan would do, shown before the shopper says yes."""

    membership: Membership
    plan: Plan
    kind: Literal["upgrade", "downgrade"]
    due_now_minor: int  # charged at once (an upgrade's proration, as the provider computes it)
    credit_minor: int  # the unused time of the current plan taken off it
    takes_effect: datetime | None  # when the new plan starts (a downgrade: the end of the paid period)
    proration_date: int


class Memberships:
    def __init__(
        self,
        db: Database,
        billing: Callable[[], Billing],
        events: MembershipEvents,
        settings: Settings,
        gateway_kind: Callable[[], str],
        clock: Callable[[], datetime],
    ) -> None:
        self._db, self._billing, self.events = db, billing, events
        self._settings, self._kind, self._clock = settings, gateway_kind, clock

    def price(self, plan: str) -> int:
        s = self._settings
        return s.premium_monthly_price_minor if plan == "monthly" else s.premium_yearly_price_minor

    async def latest(self, user_id: str) -> Membership | None:
        """The membership that counts: the newest one that has not ended, else the newest."""
        found = await memberships_of(self._db, user_id)
        live = [m for m in found if m.status != MemberStatus.CANCELED.value]
        return (live or found)[0] if found else None

    async def premium(self, user_id: str) -> bool:
        """Asked on every request that gives a member something: from the membership's facts, now."""
        now = self._clock()
        return any(is_premium(m, now) for m in await memberships_of(self._db, user_id))

    async def member_discount(self, user_id: str) -> int:
        """The member-price percent off a checkout for this person now (0 for non-members)."""
        percent = self._settings.premium_member_discount_percent
        return percent if percent and await self.premium(user_id) else 0

    async def join(self, user_id: str, plan: Plan) -> tuple[Membership, bool]:
        """A membership and its payment page; the same request again within a day returns the same one."""
        if user_id.startswith(GUEST_PREFIX):
            raise OrderError("premium needs an account: sign in first, then join")
        db = self._db
        now = self._clock()
        for existing in await memberships_of(db, user_id):
            if is_premium(existing, now) or existing.status in ("active", "past_due"):
                raise OrderError(
                    f"you are already a premium member ({existing.plan}); change_premium_plan switches "
                    "between monthly and yearly"
                )
            if (
                existing.status == MemberStatus.INCOMPLETE.value
                and existing.plan == plan
                and existing.checkout_url
                and now - existing.created_at < REUSE_WITHIN
            ):
                return existing, True
        currency = self._settings.premium_currency.upper()
        membership = Membership(
            id=new_id("mem"),
            user_id=user_id,
            gateway=self._kind(),
            status=MemberStatus.INCOMPLETE.value,
            plan=plan,
            currency=currency,
            amount_minor=self.price(plan),
            created_at=now,
            updated_at=now,
        )
        await insert_membership(db, membership)
        page = f"{self._settings.base_url}/"
        request = SubscriptionRequest(
            subscription_id=membership.id,
            user_id=user_id,
            currency=currency,
            lines=(LineItem("premium", f"Shine premium ({plan})", membership.amount_minor, 1),),
            interval_weeks=1,
            interval=INTERVAL[plan],
            metadata_key=METADATA_KEY,
            success_url=page,
            cancel_url=page,
            customer_email=await self._email(db, user_id),
        )
        try:
            session = await self._billing().create_subscription_session(
                request, idempotency_key=f"shine-premium-{membership.id}"
            )
        except PaymentError as exc:
            raise OrderError(f"the payment page could not be made: {exc.message}") from exc

        def attach(m: Membership) -> None:
            m.checkout_session_id = m.checkout_session_id or session.id
            m.checkout_url = m.checkout_url or session.url

        await self.events.change(membership.id, attach, None)
        found = await get_membership(db, membership.id)
        assert found is not None
        return found, False

    async def _email(self, db: Database, user_id: str) -> str | None:
        async with db.reading() as session:
            user = await session.get(User, user_id)
        return user.email if user is not None and user.email_verified else None

    async def _running(self, user_id: str, doing: str) -> tuple[Membership, str]:
        m = await self.latest(user_id)
        if m is None or m.status == MemberStatus.CANCELED.value:
            raise OrderError(f"you have no premium membership to {doing}; join_premium starts one")
        if m.provider_subscription_id is None or m.status == MemberStatus.INCOMPLETE.value:
            raise OrderError(
                f"your premium membership is not paid yet, so there is nothing to {doing}; its payment page is "
                f"{m.checkout_url or 'not ready'}"
            )
        return m, m.provider_subscription_id

    async def plan_change(self, user_id: str, plan: Plan) -> PlanChange:
        """What switching to `plan` would do (nothing changes): an upgrade's charge now as the provider's
        preview computes it, or a downgrade's start at the end of the paid period."""
        m, provider_id = await self._running(user_id, "change")
        if m.cancel_at_period_end:
            raise OrderError(
                "your membership is cancelled at the end of this period; join again after it ends"
            )
        if plan == m.plan:
            raise OrderError(f"you are on the {plan} plan already")
        if m.pending_plan == plan:
            raise OrderError(f"the switch to {plan} is booked already, from {m.current_period_end:%d %B %Y}")
        billing = self._billing()
        try:
            current = await billing.retrieve_subscription(provider_id)
        except PaymentError as exc:
            raise OrderError(f"your membership could not be read: {exc.message}") from exc
        items = price_items(
            current, stripe_amount(self.price(plan), m.currency), {"interval": INTERVAL[plan]}
        )
        # The same proration date for the preview and the change (within the hour), so the shopper is charged
        # what they were shown.
        start = max(int(i.get("current_period_start") or 0) for i in items_of(current))
        moment = int(self._clock().replace(minute=0, second=0, microsecond=0).timestamp())
        proration_date = max(start, moment)
        if plan == "yearly":
            try:
                preview = await billing.preview_change(provider_id, items, proration_date)
            except PaymentError as exc:
                raise OrderError(f"the price of the switch could not be worked out: {exc.message}") from exc
            total, due = preview_total(preview)
            credit = -sum(int(line["amount"]) for line in preview["lines"]["data"] if int(line["amount"]) < 0)
            return PlanChange(
                m,
                plan,
                "upgrade",
                from_stripe_amount(due, m.currency),
                from_stripe_amount(credit, m.currency),
                datetime.fromtimestamp(proration_date, UTC),
                proration_date,
            )
        return PlanChange(m, plan, "downgrade", 0, 0, m.current_period_end, proration_date)

    async def change_plan(self, user_id: str, change: PlanChange) -> Membership:
        m, provider_id = await self._running(user_id, "change")
        billing = self._billing()
        try:
            current = await billing.retrieve_subscription(provider_id)
            amount = stripe_amount(self.price(change.plan), m.currency)
            items = price_items(current, amount, {"interval": INTERVAL[change.plan]})
            key = f"shine-premium-{m.id}-{change.plan}-{change.proration_date}"
            if change.kind == "upgrade":
                params = {
                    "items": items,
                    "proration_behavior": "always_invoice",
                    "proration_date": change.proration_date,
                }
                updated = await billing.update_subscription(provider_id, params, idempotency_key=key)
            else:
                updated = await billing.change_at_period_end(provider_id, items, idempotency_key=key)
        except PaymentError as exc:
            raise OrderError(f"the switch could not be made: {exc.message}") from exc
        snapshot = self._answer(m, updated)

        def switched(row: Membership) -> None:
            apply_snapshot(row, snapshot)
            if change.kind == "downgrade":
                row.pending_plan = change.plan
            else:
                row.amount_minor = self.price(change.plan)

        await self.events.change(m.id, switched, None)
        found = await get_membership(self._db, m.id)
        assert found is not None
        return found

    def _answer(self, m: Membership, updated: Mapping[str, Any]) -> Snapshot:
        """The provider's answer, as a snapshot at least as new as the newest event applied."""
        at = self._clock()
        if m.snapshot_at is not None and m.snapshot_at >= at:
            at = m.snapshot_at + timedelta(milliseconds=1)
        return Snapshot.of(updated, at)

    async def cancel(self, user_id: str) -> Membership:
        m, provider_id = await self._running(user_id, "cancel")
        try:
            # A booked switch goes first: a subscription a schedule runs is not cancelled directly.
            if m.pending_plan:
                await self._billing().release_schedule(provider_id)
            updated = await self._billing().update_subscription(
                provider_id, {"cancel_at_period_end": True}, idempotency_key=f"shine-premium-{m.id}-cancel"
            )
        except PaymentError as exc:
            raise OrderError(f"the membership could not be cancelled: {exc.message}") from exc
        snapshot = self._answer(m, updated)

        def cancelled(row: Membership) -> None:
            apply_snapshot(row, snapshot)
            row.pending_plan = None

        await self.events.change(m.id, cancelled, None)
        found = await get_membership(self._db, m.id)
        assert found is not None
        return found

    async def portal(self, user_id: str, customer_ids: list[str]) -> str:
        """The payment-methods page of this person's billing customer (their membership's, else a refill
        subscription's, `customer_ids`)."""
        m = await self.latest(user_id)
        customers = ([m.provider_customer_id] if m and m.provider_customer_id else []) + customer_ids
        if not customers:
            raise OrderError(
                "there is no card on file yet: payment methods are kept once a subscription or membership is paid"
            )
        try:
            return await self._billing().portal_url(customers[0], f"{self._settings.base_url}/")
        except PaymentError as exc:
            raise OrderError(f"the payment methods page could not be opened: {exc.message}") from exc

    async def end_all(self, user_id: str) -> int:
        """End a person's running memberships at once (they are erasing their data)."""
        ended = 0
        for m in await memberships_of(self._db, user_id, limit=1000):
            if m.status == MemberStatus.CANCELED.value:
                continue
            if m.provider_subscription_id is not None:
                try:
                    gone = await self._billing().cancel_now(m.provider_subscription_id)
                except PaymentError as exc:
                    raise OrderError(
                        f"your premium membership could not be stopped ({exc.message}); nothing was deleted, "
                        "try again in a moment"
                    ) from exc
                snapshot = Snapshot.of(gone, self._clock())

                def end(row: Membership, snapshot: Snapshot = snapshot) -> None:
                    apply_snapshot(row, snapshot, deleted=True)

                await self.events.change(m.id, end, None)
            else:
                stamp = self._clock()

                def close(row: Membership, at: datetime = stamp) -> None:
                    row.ended_at = row.ended_at or at

                await self.events.change(m.id, close, None)
            ended += 1
        return ended
