"""Money as integer minor units with a currency: never floats on the way to a price."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from pydantic import BaseModel, Field

# ISO 4217 exponents that are not 2; everything else has cents.
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$", "KRW": "₩", "INR": "₹"}


class MoneyError(ValueError):
    pass


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal | str | float | int, currency: str) -> int:
    """Convert a major-unit amount to minor units, refusing sub-minor precision rather than rounding it away."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"{amount!r} is not a number") from exc
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not a finite amount")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more decimals than {currency.upper()} allows ({exponent(currency)})")
    return int(scaled)


def to_minor_rounded(amount: float, currency: str) -> int:
    """For user-stated limits ("under $24.999") where rounding is harmless."""
    return int(Decimal(str(amount)).scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(amount_minor: int, currency: str) -> str:
    exp = exponent(currency)
    major = Decimal(amount_minor).scaleb(-exp)
    text = f"{major:,.{exp}f}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"


class Money(BaseModel):
    """A price as the client should show it: exact minor units plus a ready-made display string."""

    amount_minor: int = Field(description="Integer amount in the currency's minor unit (cents for USD).")
    currency: str = Field(description="ISO 4217 code, e.g. USD.")
    display: str = Field(description="Formatted for people, e.g. $16.99.")

    @classmethod
    def maybe(cls, amount_minor: int | None, currency: str | None) -> Money | None:
        """`of` for amounts that may be unknown (a page without a price, a profile without a budget)."""
        return None if amount_minor is None or not currency else cls.of(amount_minor, currency)

    @classmethod
    def of(cls, amount_minor: int, currency: str) -> Money:
        return cls(
            amount_minor=amount_minor, currency=currency.upper(), display=format_money(amount_minor, currency)
        )
