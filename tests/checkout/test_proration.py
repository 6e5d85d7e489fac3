"""Proration and billing periods as the simulated billing computes them (Stripe's rules, worked out by hand)."""

from __future__ import annotations

from datetime import UTC, datetime

from shine_mcp.integrations.proration import period_end, prorate


def stamp(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def item(amount: int, interval: str, start: int, end: int, quantity: int = 1) -> dict[str, object]:
    price = {"unit_amount": amount, "recurring": {"interval": interval, "interval_count": 1}}
    return {
        "id": "si_1",
        "price": price,
        "quantity": quantity,
        "current_period_start": start,
        "current_period_end": end,
    }


def test_months_and_years_follow_the_calendar_and_weeks_are_exact() -> None:
    assert period_end(stamp(2027, 1, 31), {"interval": "month"}) == stamp(2027, 2, 28)
    assert period_end(stamp(2028, 2, 29), {"interval": "year"}) == stamp(2029, 2, 28)
    assert period_end(stamp(2027, 3, 1), {"interval": "week", "interval_count": 6}) == stamp(2027, 4, 12)


def test_a_swap_part_way_credits_the_unused_old_price_and_charges_the_new_one_for_the_same_time() -> None:
    start, end = stamp(2027, 3, 1), stamp(2027, 3, 29)  # four weeks
    at = stamp(2027, 3, 8)  # three of them left
    before = item(1699, "week", start, end)
    after = [({"unit_amount": 2200, "recurring": {"interval": "week", "interval_count": 1}}, 1)]
    result = prorate([before], after, at)
    assert [line.amount for line in result.lines] == [-1274, 1650]  # 1699 × 3/4 = 1274.25; 2200 × 3/4
    assert result.amount_due == 376 and not result.resets_period


def test_a_new_interval_starts_a_new_period_charged_in_full() -> None:
    start, end = stamp(2027, 3, 1), stamp(2027, 4, 1)  # 31 days
    at = stamp(2027, 3, 11)  # 21 days left
    result = prorate(
        [item(799, "month", start, end)], [({"unit_amount": 7900, "recurring": {"interval": "year"}}, 1)], at
    )
    credit = (2 * 799 * 21 + 31) // (2 * 31)  # 541.26… rounded half up
    assert [line.amount for line in result.lines] == [-credit, 7900]
    assert result.resets_period and result.lines[1].end == stamp(2028, 3, 11)
    assert result.amount_due == 7900 - credit


def test_a_cheaper_swap_is_a_credit_and_charges_nothing_now() -> None:
    start, end = stamp(2027, 3, 1), stamp(2027, 3, 29)
    after = [({"unit_amount": 1000, "recurring": {"interval": "week", "interval_count": 1}}, 1)]
    result = prorate([item(2000, "week", start, end)], after, stamp(2027, 3, 15))
    assert result.total == -500 and result.amount_due == 0
