"""A product page becomes a catalog record (`store.web_products`), apart from the tool that reads the page."""

from __future__ import annotations

from decimal import Decimal

from shine_mcp.money import Money
from shine_mcp.store.records import product_id_for
from shine_mcp.store.web_products import WebProductPage, web_product


def page(price: Money, brand: str | None = "GlowLab") -> WebProductPage:
    return WebProductPage(
        url="https://glowlab.example/products/serum",
        domain="glowlab.example",
        name="Niacinamide 10% Serum",
        brand=brand,
        category="serum",
        price=price,
        description=None,
        image_url=None,
        ingredients_text="Aqua, Niacinamide",
    )


def test_a_page_price_is_kept_in_its_currencys_own_unit() -> None:
    assert web_product(page(Money.of(1250, "USD"))).price == Decimal("12.50")
    assert web_product(page(Money.of(1250, "JPY"))).price == Decimal("1250")
    assert web_product(page(Money.of(1250, "KWD"))).price == Decimal("1.250")


def test_the_same_page_always_gives_the_same_product_and_the_site_stands_in_for_a_missing_brand() -> None:
    first, again = (
        web_product(page(Money.of(1250, "USD"), brand=None)),
        web_product(page(Money.of(990, "USD"))),
    )
    assert first.handle == again.handle == "glowlab-example-niacinamide-10-serum"
    assert product_id_for(first.handle) == product_id_for(again.handle)
    assert first.brand == "glowlab.example" and again.brand == "GlowLab"
    assert first.description == "" and first.ingredients == "Aqua, Niacinamide"
