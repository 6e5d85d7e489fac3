"""The sales report: orders, revenue and refunds per UTC day and currency, units and revenue per variant, and
the affiliate click-outs ("Buy at <merchant>") per product and source.

Revenue counts on the day an order was paid, refunds on the day they were made, so a refund next month
lowers next month's net, as in the payment provider's own reports. Refill subscriptions add, per currency: those
active at the period's end, their monthly recurring revenue (every N weeks is 52 / 12 / N deliveries a month),
churn (ended in the period over active at its start) and the refills due in the next 14 days. Premium
memberships add, per currency: members at the period's end, those who joined and left in it, their monthly
recurring revenue (a yearly plan brings a twelfth of its price a month) and churn, counted as for refills.
Grouped here rather than in SQL: date functions differ between SQLite and PostgreSQL, and a shop's day of
orders is small.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.clicks import ClickCount, clicks_report
from shine_mcp.store.db import Database
from shine_mcp.store.memberships import Membership, memberships_started_before
from shine_mcp.store.orders import order_lines, paid_between, refunds_between
from shine_mcp.store.subscriptions import Subscription, started_before
from shine_mcp.store.tables import default_variant_id

MAX_DAYS = 366
UPCOMING = timedelta(days=14)


@dataclass
class Tally:
    orders: int = 0
    revenue_minor: int = 0
    refunds_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.revenue_minor - self.refunds_minor


@dataclass
class VariantSales:
    """One variant's sales in the period, under the name it was sold as."""

    product_id: str
    name: str
    units: int = 0
    revenue_minor: int = 0


@dataclass
class RecurringTally:
    """One currency's recurring revenue: what runs now, its monthly value, and churn over the period."""

    active: int = 0
    monthly_minor: Fraction = Fraction(0)  # exact until shown
    active_at_start: int = 0
    ended: int = 0

    @property
    def mrr_minor(self) -> int:
        return round(self.monthly_minor)

    @property
    def churn(self) -> float | None:
        """Ended in the period over active at its start; unknown when none were active at the start."""
        return self.ended / self.active_at_start if self.active_at_start else None


@dataclass
class Recurring(RecurringTally):
    """One currency's refill subscriptions in the report."""

    upcoming_refills: int = 0
    upcoming_minor: int = 0


@dataclass
class Members(RecurringTally):
    """One currency's premium memberships in the report."""

    joined: int = 0


def per_delivery_minor(sub: Subscription) -> int:
    return sum(int(item["unit_price_minor"]) * int(item["quantity"]) for item in sub.items)


def _live_at(sub: Subscription | Membership, moment: datetime) -> bool:
    return (
        sub.activated_at is not None
        and sub.activated_at < moment
        and (sub.ended_at is None or sub.ended_at >= moment)
    )


def recurring(subs: list[Subscription], low: datetime, high: datetime, now: datetime) -> dict[str, Recurring]:
    """Per currency. Active means paid for and not ended at the period's end (or now, if sooner), and not
    paused now: a paused subscription brings no revenue until resumed."""
    tallies: dict[str, Recurring] = defaultdict(Recurring)
    end = min(high, now)
    for sub in subs:
        tally = tallies[sub.currency]
        if _live_at(sub, low):
            tally.active_at_start += 1
            if sub.ended_at is not None and sub.ended_at < high:
                tally.ended += 1
        if _live_at(sub, end) and sub.status != "paused":
            tally.active += 1
            tally.monthly_minor += Fraction(per_delivery_minor(sub) * 52, 12 * sub.interval_weeks)
        due = sub.next_delivery
        if sub.ended_at is None and due is not None and now <= due < now + UPCOMING:
            tally.upcoming_refills += 1
            tally.upcoming_minor += per_delivery_minor(sub)
    return dict(sorted(tallies.items()))


def members(found: list[Membership], low: datetime, high: datetime, now: datetime) -> dict[str, Members]:
    """Per currency. A member at a moment: the first period paid before it and not ended by it."""
    tallies: dict[str, Members] = defaultdict(Members)
    end = min(high, now)
    for m in found:
        tally = tallies[m.currency]
        if _live_at(m, low):
            tally.active_at_start += 1
            if m.ended_at is not None and m.ended_at < high:
                tally.ended += 1
        elif m.activated_at is not None and low <= m.activated_at < high:
            tally.joined += 1
        if _live_at(m, end):
            tally.active += 1
            tally.monthly_minor += Fraction(m.amount_minor, 12 if m.plan == "yearly" else 1)
    return dict(sorted(tallies.items()))


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    days: dict[tuple[date, str], Tally] = field(default_factory=dict)
    totals: dict[str, Tally] = field(default_factory=dict)
    simulated_included: bool = False
    # (variant id, currency) -> sales of the orders paid in the period, best-selling first
    variants: dict[tuple[str, str], VariantSales] = field(default_factory=dict)
    subscriptions: dict[str, Recurring] = field(default_factory=dict)
    members: dict[str, Members] = field(default_factory=dict)
    # "Buy at <merchant>" clicks in the period per product and merchant, most clicked first
    clicks: list[ClickCount] = field(default_factory=list)


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)


async def sales_report(
    db: Database, start: date, end: date, *, include_simulated: bool, now: datetime | None = None
) -> Report:
    """`start` and `end` are inclusive UTC days. Simulated orders (no real money) count only when asked.
    `now`: the billing clock's time (the simulated clock moves on), from which upcoming refills count."""
    low, high = day_bounds(start, end)
    now = now or utcnow()
    days: dict[tuple[date, str], Tally] = defaultdict(Tally)
    totals: dict[str, Tally] = defaultdict(Tally)
    orders = [
        order
        for order in await paid_between(db, low, high)
        if order.gateway != "simulated" or include_simulated
    ]
    for order in orders:
        assert order.paid_at is not None
        for tally in (days[(order.paid_at.date(), order.currency)], totals[order.currency]):
            tally.orders += 1
            tally.revenue_minor += order.total_minor
    variants: dict[tuple[str, str], VariantSales] = {}
    lines = await order_lines(db, [order.id for order in orders])
    for order in orders:
        for line in lines[order.id]:
            key = (line.variant_id or default_variant_id(line.product_id), order.currency)
            sold = variants.setdefault(
                key, VariantSales(line.product_id, f"{line.brand} {line.name}".strip())
            )
            sold.units += line.quantity
            sold.revenue_minor += line.unit_price_minor * line.quantity
    for refund, gateway in await refunds_between(db, low, high):
        if gateway == "simulated" and not include_simulated:
            continue
        for tally in (days[(aware(refund.created_at).date(), refund.currency)], totals[refund.currency]):
            tally.refunds_minor += refund.amount_minor
    return Report(
        start=start,
        end=end,
        days=dict(sorted(days.items())),
        totals=dict(sorted(totals.items())),
        simulated_included=include_simulated,
        variants=dict(sorted(variants.items(), key=lambda kv: (-kv[1].revenue_minor, kv[0]))),
        subscriptions=recurring(
            [
                s
                for s in await started_before(db, max(high, now))
                if s.gateway != "simulated" or include_simulated
            ],
            low,
            high,
            now,
        ),
        members=members(
            [
                m
                for m in await memberships_started_before(db, max(high, now))
                if m.gateway != "simulated" or include_simulated
            ],
            low,
            high,
            now,
        ),
        clicks=await clicks_report(db, low, high),
    )
