"""Billing periods and proration as Stripe Billing computes them, for the simulated billing (Stripe computes its
own; Shine only shows what Stripe's preview says).

Changing a subscription item's price or quantity part-way through a period (`proration_behavior`
`always_invoice` or `create_prorations`) gives two lines per changed item: a credit for the unused time of
the old price and a charge for the same time at the new one, each `amount × time left / period`, rounded
half up to the minor unit. A change of billing interval (monthly → yearly) starts a new period at once: the
credit for the old price's unused time, and the new price charged in full for the new period.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


def period_end(start: int, recurring: Mapping[str, Any]) -> int:
    """The end (epoch seconds) of a period starting at `start`: weeks and days exactly, months and years by
    the calendar (the 31st of January plus a month is the last day of February), as Stripe bills."""
    count = int(recurring.get("interval_count") or 1)
    interval = str(recurring.get("interval") or "week")
    moment = datetime.fromtimestamp(start, UTC)
    if interval in ("day", "week"):
        return int((moment + timedelta(days=count * (7 if interval == "week" else 1))).timestamp())
    months = count * (12 if interval == "year" else 1)
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return int(moment.replace(year=year, month=month + 1, day=day).timestamp())


def _share(amount: int, left: int, whole: int) -> int:
    """`amount × left / whole`, rounded half up (amounts here are never negative)."""
    return (2 * amount * left + whole) // (2 * whole)


@dataclass(frozen=True)
class ProrationLine:
    item_id: str
    amount: int  # in Stripe's units: negative for a credit
    description: str
    start: int
    end: int


@dataclass(frozen=True)
class Proration:
    lines: tuple[ProrationLine, ...]
    resets_period: bool  # a new billing interval: the new period starts at the change

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def amount_due(self) -> int:
        """What is charged now with `always_invoice` (a net credit goes to the customer's balance)."""
        return max(0, self.total)


def prorate(
    items: Sequence[Mapping[str, Any]], after: Sequence[tuple[Mapping[str, Any], int]], at: int
) -> Proration:
    """The proration of changing each subscription item (`items`, Stripe's `subscription_item` objects) to the
    (price, quantity) in `after` at `at` (epoch seconds)."""
    lines: list[ProrationLine] = []
    resets = False
    for item, (price, quantity) in zip(items, after, strict=True):
        old_price = item["price"]
        old = int(old_price["unit_amount"]) * int(item["quantity"])
        new = int(price["unit_amount"]) * quantity
        new_interval = dict(price["recurring"]) != dict(old_price["recurring"])
        resets = resets or new_interval
        if old == new and not new_interval:
            continue
        start, end = int(item["current_period_start"]), int(item["current_period_end"])
        left, whole = max(0, end - at), max(1, end - start)
        lines.append(ProrationLine(str(item["id"]), -_share(old, left, whole), "Unused time", at, end))
        if new_interval:
            lines.append(
                ProrationLine(
                    str(item["id"]), new, "New billing period", at, period_end(at, price["recurring"])
                )
            )
        else:
            lines.append(ProrationLine(str(item["id"]), _share(new, left, whole), "Remaining time", at, end))
    return Proration(tuple(lines), resets)


def preview_total(invoice: Mapping[str, Any]) -> tuple[int, int]:
    """(total, amount due now) of Stripe's invoice preview (`invoices.create_preview`)."""
    total = int(invoice.get("total") or 0)
    due = invoice.get("amount_due")
    return total, max(0, total) if due is None else int(due)
