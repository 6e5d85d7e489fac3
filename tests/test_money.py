"""Amounts by currency: ISO 4217 minor units for prices and display, Stripe's own units on the way to Stripe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import shine_mcp
from shine_mcp.money import (
    STRIPE_THREE_DECIMAL,
    STRIPE_ZERO_DECIMAL,
    MoneyError,
    exponent,
    format_money,
    from_stripe_amount,
    stripe_amount,
    to_minor,
)


def test_dollars_have_cents_here_and_at_stripe() -> None:
    assert to_minor("19.99", "USD") == 1999
    assert stripe_amount(1999, "usd") == 1999
    assert format_money(1999, "USD") == "$19.99"


def test_yen_has_no_minor_unit() -> None:
    assert to_minor("1500", "JPY") == 1500
    assert stripe_amount(1500, "JPY") == 1500
    assert format_money(1500, "JPY") == "¥1,500"
    with pytest.raises(MoneyError, match="JPY"):
        to_minor("1500.5", "JPY")


def test_a_west_african_franc_price_is_not_multiplied_by_a_hundred() -> None:
    # XOF has no minor unit: 5000 francs is 5000 at Stripe too, not 500000.
    assert exponent("XOF") == 0
    assert to_minor("5000", "XOF") == 5000
    assert stripe_amount(5000, "XOF") == 5000
    assert format_money(5000, "XOF") == "5,000 XOF"


def test_kuwaiti_dinar_has_three_decimals_and_stripe_wants_the_last_one_zero() -> None:
    assert to_minor("5.12", "KWD") == 5120
    assert stripe_amount(5120, "KWD") == 5120
    assert format_money(5120, "KWD") == "5.120 KWD"
    # Stripe's payment partners take three-decimal amounts only to the hundredth: refuse, never round a price.
    with pytest.raises(MoneyError, match="KWD"):
        stripe_amount(5124, "KWD")


def test_krona_and_shilling_are_whole_units_but_stripe_still_counts_hundredths() -> None:
    for currency in ("ISK", "UGX"):
        assert to_minor("1990", currency) == 1990
        assert format_money(1990, currency) == f"1,990 {currency}"
        assert stripe_amount(1990, currency) == 199000
        assert from_stripe_amount(199000, currency) == 1990


def test_forint_and_taiwan_dollar_are_sent_in_hundredths() -> None:
    for currency in ("HUF", "TWD"):
        assert to_minor("1990.50", currency) == 199050
        assert stripe_amount(199050, currency) == 199050
        assert format_money(199050, currency) == f"1,990.50 {currency}"


def test_a_currency_stripe_charges_in_whole_units_refuses_iso_fractions() -> None:
    # The ariary has two ISO decimals but Stripe takes it as zero-decimal: 5000.00 MGA is 5000 at Stripe.
    assert to_minor("5000", "MGA") == 500000
    assert stripe_amount(500000, "MGA") == 5000
    assert from_stripe_amount(5000, "MGA") == 500000
    with pytest.raises(MoneyError, match="MGA"):
        stripe_amount(500050, "MGA")


def test_every_listed_stripe_currency_round_trips() -> None:
    for currency in sorted(STRIPE_ZERO_DECIMAL | STRIPE_THREE_DECIMAL | {"USD", "EUR", "HUF", "ISK"}):
        whole = to_minor("120", currency)
        assert from_stripe_amount(stripe_amount(whole, currency), currency) == whole, currency


def test_the_currency_table_is_iso_4217_with_its_source() -> None:
    data = json.loads((Path(shine_mcp.__file__).parent / "iso4217.json").read_text())
    assert data["source"].startswith("ISO 4217") and data["published"]
    units = data["minor_units"]
    assert len(units) > 150
    assert (units["USD"], units["JPY"], units["XOF"], units["KWD"], units["CLF"]) == (2, 0, 0, 3, 4)
