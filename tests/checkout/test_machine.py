"""The order state machine on its own: any delivery order of the same events gives the same order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from shine_mcp.orders import machine
from shine_mcp.orders.machine import Facts, Status

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(events: list[machine.Event], total: int = 4400) -> Facts:
    facts = Facts(total_minor=total)
    for event in events:
        facts = machine.advance(facts, event)
    return facts


STORIES: list[tuple[list[machine.Event], Status]] = [
    ([machine.Paid(at(1))], Status.PAID),
    (
        [machine.Paid(at(1)), machine.FulfilmentStarted(at(2), "primary"), machine.Shipped(at(3), "1Z")],
        Status.SHIPPED,
    ),
    ([machine.Expired(at(5)), machine.Paid(at(1))], Status.PAID),
    ([machine.Cancelled(at(1)), machine.Expired(at(2))], Status.CANCELLED),
    ([machine.Paid(at(1)), machine.Refunded(at(2), 1000)], Status.PARTIALLY_REFUNDED),
    ([machine.Paid(at(1)), machine.Refunded(at(2), 1000), machine.Refunded(at(3), 4400)], Status.REFUNDED),
    ([machine.Paid(at(1)), machine.Shipped(at(2)), machine.Disputed(at(3), "fraudulent")], Status.DISPUTED),
    ([machine.PaymentFailed(at(1))], Status.PAYMENT_FAILED),
    ([machine.Refunded(at(2), 4400), machine.Paid(at(1))], Status.REFUNDED),
]


@pytest.mark.parametrize(("events", "expected"), STORIES)
def test_every_delivery_order_gives_the_same_status(events: list[machine.Event], expected: Status) -> None:
    outcomes = {run(list(order)) for order in permutations(events)}
    assert len(outcomes) == 1  # the very same facts, not only the same status
    assert machine.status_of(outcomes.pop()) is expected


@pytest.mark.parametrize(("events", "expected"), STORIES)
def test_applying_every_event_twice_changes_nothing(events: list[machine.Event], expected: Status) -> None:
    once = run(events)
    twice = run([e for event in events for e in (event, event)])
    assert once == twice and machine.status_of(twice) == expected


def test_refunds_take_the_running_total_never_a_sum() -> None:
    facts = run([machine.Paid(at(1)), machine.Refunded(at(2), 1500), machine.Refunded(at(3), 1000)])
    assert facts.amount_refunded_minor == 1500  # a late, smaller total is an older event


def test_a_refund_never_exceeds_the_total() -> None:
    assert run([machine.Paid(at(1)), machine.Refunded(at(2), 9999)]).amount_refunded_minor == 4400


def test_an_unpaid_order_never_shows_as_shipped_and_a_paid_one_cannot_be_cancelled() -> None:
    unpaid = run([machine.Shipped(at(1), "1Z"), machine.FulfilmentStarted(at(1), "primary")])
    assert machine.status_of(unpaid) is Status.PENDING
    paid = run([machine.Paid(at(1)), machine.Cancelled(at(2)), machine.PaymentFailed(at(3))])
    assert machine.status_of(paid) is Status.PAID


def test_the_earliest_time_is_kept() -> None:
    assert run([machine.Paid(at(9)), machine.Paid(at(5))]).paid_at == at(5)


def test_a_late_payment_is_flagged_for_the_merchant() -> None:
    assert (
        machine.late_payment_note(run([machine.Expired(at(1))]))
        == "paid after it was expired: fulfil it or refund it"
    )
    assert machine.late_payment_note(run([])) is None
