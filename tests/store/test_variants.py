"""Product variants: Shopify's product CSV template (one handle, 3 shades × 4 sizes) is one product with 12
variants; search shows it once with its price range; the cart, payment, refund and sales report work per
variant; and the migration gives every existing product, cart item and order line its default variant, on
SQLite and PostgreSQL, keeping the data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shine_mcp.config import Settings
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.service import Commerce
from shine_mcp.store.catalog import get_product, get_variants, upsert_products
from shine_mcp.store.db import alembic_config, open_database
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.records import ProductIn, product_id_for
from shine_mcp.store.tables import ProductVariant, default_variant_id
from tests.checkout.conftest import Shop, in_own_task, open_shop, shop_settings

TEMPLATE = Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv"
PRODUCT = product_id_for("example-tinted-moisturiser")


def variant_titled(variants: list[dict[str, Any]], title: str) -> dict[str, Any]:
    return next(v for v in variants if v["title"] == title)


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    """A whole Shine on the demo catalog plus the Shopify template product, with the simulated checkout."""
    async with in_own_task(open_shop(shop_settings(settings.data_dir))) as opened:
        parsed = read_catalog(TEMPLATE, default_currency="USD")
        assert parsed.errors == []
        await upsert_products(opened.services.db, parsed.records, source="import:shopify_template.csv")
        yield opened


async def variants(shop: Shop) -> list[dict[str, Any]]:
    return list((await shop.call("get_product", {"product_id": PRODUCT}))["variants"])


async def pay(shop: Shop, checkout: dict[str, Any]) -> str:
    gateway = Commerce(shop.services).gateway()
    assert isinstance(gateway, SimulatedGateway)
    await gateway.pay(checkout["checkout_url"].rsplit("/", 1)[1])
    return str(checkout["order"]["order_id"])


def test_shopify_template_rows_of_one_handle_are_one_product_with_12_variants() -> None:
    parsed = read_catalog(TEMPLATE)

    assert parsed.errors == []
    [record] = parsed.records
    assert (record.handle, record.name, record.category) == (
        "example-tinted-moisturiser",
        "Example Tinted Moisturiser",
        "moisturiser",
    )
    assert len(record.variants) == 12
    deep_30 = next(v for v in record.variants if v.options == {"Shade": "Deep", "Size": "30 ml"})
    assert (deep_30.sku, deep_30.barcode, deep_30.price, deep_30.stock, deep_30.size) == (
        "ETM-D-30",
        "0850012340010",
        Decimal("19.00"),
        40,
        "30 ml",  # from the option named Size
    )
    assert deep_30.image_url is not None and deep_30.image_url.endswith(
        "example-tinted-moisturiser-deep.jpg?v=1700000000"
    )
    assert record.image_url is not None and "front" in record.image_url


async def test_the_template_is_stored_as_one_product_its_stock_the_sum_and_its_price_a_range(
    shop: Shop,
) -> None:
    db = shop.services.db
    product = await get_product(db, PRODUCT)
    stored = await get_variants(db, PRODUCT)

    assert product is not None and len(stored) == 12
    assert product.stock == sum(v.stock for v in stored)
    assert (product.price_minor, product.price_max_minor) == (1200, 4200)
    assert [v.title for v in stored[:2]] == ["Light / 15 ml", "Light / 30 ml"]
    assert stored[1].size == "30 ml" and stored[1].options == {"Shade": "Light", "Size": "30 ml"}
    # A re-import updates the same variants (carts pointing at them stay valid).
    again = read_catalog(TEMPLATE).records
    await upsert_products(db, again, source="import:shopify_template.csv")
    assert [v.id for v in await get_variants(db, PRODUCT)] == [v.id for v in stored]


async def test_search_returns_the_product_once_with_its_price_range(shop: Shop) -> None:
    page = await shop.call("search_products", {"query": "tinted moisturiser"})

    ours = [p for p in page["products"] if p["brand"] == "Example Skin Co"]
    assert [p["id"] for p in ours] == [PRODUCT]
    assert (ours[0]["price"]["display"], ours[0]["price_max"]["display"]) == ("$12.00", "$42.00")
    detail = await shop.call("get_product", {"product_id": PRODUCT})
    assert len(detail["variants"]) == 12
    light_15 = variant_titled(detail["variants"], "Light / 15 ml")
    assert (light_15["in_stock"], light_15["sku"], light_15["options"]) == (
        False,
        "ETM-L-15",
        {"Shade": "Light", "Size": "15 ml"},
    )


async def test_add_to_cart_without_a_variant_takes_the_first_in_stock_and_says_which(shop: Shop) -> None:
    cart = await shop.call("add_to_cart", {"product_id": PRODUCT})

    [line] = cart["lines"]
    light_30 = variant_titled(await variants(shop), "Light / 30 ml")  # Light / 15 ml is sold out
    assert line["variant_id"] == light_30["id"]
    assert line["name"] == "Example Tinted Moisturiser – Light / 30 ml"
    assert line["unit_price"]["amount_minor"] == 1900
    assert any("Light / 30 ml" in n and "variant_id" in n for n in cart["notices"])


async def test_add_to_cart_with_a_variant_id_adds_that_one_as_its_own_line(shop: Shop) -> None:
    listed = await variants(shop)
    deep_100, medium_50 = variant_titled(listed, "Deep / 100 ml"), variant_titled(listed, "Medium / 50 ml")

    refused = await shop.refused("add_to_cart", {"product_id": PRODUCT, "variant_id": deep_100["id"]})
    assert "out of stock" in refused and "Deep / 100 ml" in refused
    await shop.call("add_to_cart", {"product_id": PRODUCT, "variant_id": medium_50["id"], "quantity": 2})
    cart = await shop.call("add_to_cart", {"product_id": PRODUCT})

    assert [(line["variant_id"], line["quantity"]) for line in cart["lines"]] == [
        (medium_50["id"], 2),
        (variant_titled(listed, "Light / 30 ml")["id"], 1),
    ]
    assert cart["subtotal"]["amount_minor"] == 7100  # 2 × 26.00 + 19.00
    # Two lines of one product: a change must say which.
    ambiguous = await shop.refused("update_cart_item", {"product_id": PRODUCT, "quantity": 1})
    assert "variant_id" in ambiguous
    cart = await shop.call("remove_from_cart", {"product_id": PRODUCT, "variant_id": medium_50["id"]})
    assert [line["quantity"] for line in cart["lines"]] == [1]
    assert "no variant" in await shop.refused("add_to_cart", {"product_id": PRODUCT, "variant_id": "var_0"})


async def test_paying_takes_stock_from_the_variant_and_a_refund_puts_it_back(shop: Shop) -> None:
    db = shop.services.db
    before = {v.id: v.stock for v in await get_variants(db, PRODUCT)}
    medium_50 = variant_titled(await variants(shop), "Medium / 50 ml")
    await shop.call("add_to_cart", {"product_id": PRODUCT, "variant_id": medium_50["id"], "quantity": 3})
    order_id = await pay(shop, await shop.call("checkout"))

    after = {v.id: v.stock for v in await get_variants(db, PRODUCT)}
    assert after[medium_50["id"]] == before[medium_50["id"]] - 3
    assert {k: v for k, v in after.items() if k != medium_50["id"]} == {
        k: v for k, v in before.items() if k != medium_50["id"]
    }
    assert await shop.stock(PRODUCT) == sum(after.values())  # the product's sum moved with it
    order = await shop.call("get_order", {"order_id": order_id})
    assert order["lines"][0]["variant_id"] == medium_50["id"]
    assert order["lines"][0]["name"] == "Example Tinted Moisturiser – Medium / 50 ml"

    refunded = await shop.call("refund_order", {"order_id": order_id}, user="usr_boss", admin=True)
    assert refunded["order"]["status"] == "refunded"
    assert {v.id: v.stock for v in await get_variants(db, PRODUCT)} == before
    assert await shop.stock(PRODUCT) == sum(before.values())


async def test_when_the_cheapest_sizes_sell_out_the_product_s_price_moves_to_the_next(shop: Shop) -> None:
    listed = await variants(shop)
    for title in ("Medium / 15 ml", "Deep / 15 ml"):  # Light / 15 ml is sold out already
        variant = variant_titled(listed, title)
        args = {"product_id": PRODUCT, "variant_id": variant["id"], "quantity": variant["stock"]}
        await shop.call("add_to_cart", args)
    await pay(shop, await shop.call("checkout"))

    page = await shop.call("search_products", {"query": "tinted moisturiser"})
    [ours] = [p for p in page["products"] if p["id"] == PRODUCT]
    assert (ours["price"]["display"], ours["price_max"]["display"]) == ("$19.00", "$42.00")
    message = await shop.refused("add_to_cart", {"product_id": PRODUCT, "variant_id": listed[4]["id"]})
    assert "out of stock" in message and "Medium / 15 ml" in message


async def test_a_product_sold_out_in_every_version_is_refused_as_such(shop: Shop) -> None:
    async with shop.services.db.session() as session:
        for variant in await get_variants(shop.services.db, PRODUCT):
            variant.stock = 0
            session.add(variant)
        await session.commit()

    assert "out of stock in every version" in await shop.refused("add_to_cart", {"product_id": PRODUCT})


async def test_a_variant_sold_out_by_another_payment_holds_the_order(shop: Shop) -> None:
    db = shop.services.db
    medium_15 = variant_titled(await variants(shop), "Medium / 15 ml")
    async with db.session() as session:
        row = await session.get(ProductVariant, medium_15["id"])
        assert row is not None
        row.stock = 1
        await session.commit()
    first, second = [], []
    for user, kept in (("usr_ana", first), ("usr_ben", second)):
        await shop.call("add_to_cart", {"product_id": PRODUCT, "variant_id": medium_15["id"]}, user=user)
        kept.append(await shop.call("checkout", user=user))
    await pay(shop, first[0])
    held_id = await pay(shop, second[0])

    held = await shop.order(held_id)
    assert held.hold_reason == "oversold"
    assert [v.stock for v in await get_variants(db, PRODUCT) if v.id == medium_15["id"]] == [0]


async def test_the_sales_report_counts_units_and_revenue_per_variant(shop: Shop) -> None:
    listed = await variants(shop)
    medium_50, deep_30 = variant_titled(listed, "Medium / 50 ml"), variant_titled(listed, "Deep / 30 ml")
    await shop.call("add_to_cart", {"product_id": PRODUCT, "variant_id": medium_50["id"], "quantity": 2})
    await shop.call("add_to_cart", {"product_id": PRODUCT, "variant_id": deep_30["id"]})
    await pay(shop, await shop.call("checkout"))
    await shop.call("add_to_cart", {"product_id": PRODUCT, "variant_id": deep_30["id"]})
    await pay(shop, await shop.call("checkout"))

    today = datetime.now(UTC).date()
    period = {"start": today.isoformat(), "end": today.isoformat()}
    report = await shop.call("sales_report", period, user="usr_boss", admin=True)

    rows = {
        r["variant_id"]: (r["units"], r["revenue"]["amount_minor"], r["name"]) for r in report["by_variant"]
    }
    assert rows == {
        medium_50["id"]: (2, 5200, "Example Skin Co Example Tinted Moisturiser – Medium / 50 ml"),
        deep_30["id"]: (2, 3800, "Example Skin Co Example Tinted Moisturiser – Deep / 30 ml"),
    }
    assert [r["variant_id"] for r in report["by_variant"]] == [medium_50["id"], deep_30["id"]]


def test_json_products_may_list_variants_and_leave_their_price_to_them(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(
        '{"format": "shine-catalog/1", "products": [{"handle": "dew-serum", "brand": "Dew", "name": "Serum",'
        ' "category": "serum", "variants": [{"options": {"Size": "30 ml"}, "price": "20", "stock": 3,'
        ' "sku": "DS-30"}, {"options": {"Size": "50 ml"}, "price": "29.5", "stock": 0}]}]}'
    )
    [record] = read_catalog(path).records
    row = record.to_row("test")

    assert [v.size for v in record.variant_rows()] == ["30 ml", "50 ml"]
    assert (row.price_minor, row.price_max_minor, row.stock) == (2000, 2000, 3)  # only 30 ml is in stock

    path.write_text('[{"brand": "Dew", "name": "Serum", "category": "serum", "variants": [{"price": "x"}]}]')
    errors = read_catalog(path).errors
    assert (1, "variants[1].price") in [(e.row, e.field) for e in errors]
    assert "'x' is not a number" in str(errors)


def test_csv_rows_of_one_handle_with_options_are_one_product(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "handle,brand,name,category,price,stock,options,sku\n"
        "tint,Dew,Tint,moisturiser,15,2,Shade: Light,T-L\n"
        "tint,,,,16,0,Shade: Deep,T-D\n"
        "plain,Dew,Plain Cream,moisturiser,9,5,,\n"
    )
    parsed = read_catalog(path)

    assert parsed.errors == []
    records = {r.handle: r for r in parsed.records}
    tint, plain = records["tint"], records["plain"]
    assert [(v.options, v.price, v.stock, v.sku) for v in tint.variants] == [
        ({"Shade": "Light"}, Decimal(15), 2, "T-L"),
        ({"Shade": "Deep"}, Decimal(16), 0, "T-D"),
    ]
    assert plain.variants == [] and plain.price == Decimal(9)


# --- the migration, from the schema before variants, with data ----------------------------------------

BEFORE = ("0960_order_holds", "0110_catalog_changes")  # the schema before variants, with triggers
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _upgrade(connection: Connection, url: str, target: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, target)


def _seed(connection: Connection) -> None:
    """Rows as the schema before variants had them: a product, a cart holding it, an order line of it, and
    a cart item and order line of a product since removed."""
    product = {
        "id": "prd_aaaaaaaaaaaa", "source": "demo", "handle": "kept", "brand": "B", "name": "Kept Cream",
        "category": "moisturiser", "description": "", "price_minor": 1999, "currency": "EUR", "size": "50 ml",
        "review_count": 0, "stock": 7, "ingredients_text": "Aqua", "ingredients": '["Aqua"]',
        "ingredient_keys": "|aqua|", "skin_types": "", "concerns": "", "tags": "", "created_at": NOW,
        "updated_at": NOW,
    }  # fmt: skip
    connection.execute(
        text(f"INSERT INTO products ({', '.join(product)}) VALUES ({', '.join(':' + k for k in product)})"),
        product,
    )
    connection.execute(
        text(
            "INSERT INTO carts (id, user_id, version, currency, created_at, updated_at) "
            "VALUES ('crt_1', 'usr_1', 3, 'EUR', :now, :now)"
        ),  # fmt: skip
        {"now": NOW},
    )
    for product_id in ("prd_aaaaaaaaaaaa", "prd_gonegonegone"):
        connection.execute(
            text(
                "INSERT INTO cart_items (cart_id, product_id, quantity, unit_price_minor, currency, added_at) "
                "VALUES ('crt_1', :p, 2, 1999, 'EUR', :now)"
            ),  # fmt: skip
            {"p": product_id, "now": NOW},
        )
    connection.execute(
        text(
            "INSERT INTO orders (id, user_id, cart_id, cart_version, gateway, status, currency, total_minor, "
            "amount_refunded_minor, success_url, cancel_url, lock_version, created_at, updated_at, paid_at) "
            "VALUES ('ord_1', 'usr_1', 'crt_1', 1, 'simulated', 'paid', 'EUR', 3998, 0, 'https://s', "
            "'https://c', 0, :now, :now, :now)"
        ),
        {"now": NOW},
    )
    for position, product_id in enumerate(("prd_aaaaaaaaaaaa", "prd_gonegonegone")):
        connection.execute(
            text(
                "INSERT INTO order_lines (order_id, position, product_id, brand, name, unit_price_minor, "
                "quantity) VALUES ('ord_1', :pos, :p, 'B', 'Kept Cream', 1999, 1)"
            ),  # fmt: skip
            {"pos": position, "p": product_id},
        )


def _after(connection: Connection) -> dict[str, Any]:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in connection.execute(text(sql))]

    return {
        "variants": rows(
            "SELECT id, product_id, position, title, price_minor, currency, stock, size FROM product_variants"
        ),
        "product": rows("SELECT stock, price_minor, price_max_minor, name FROM products"),
        "cart_items": rows("SELECT product_id, variant_id, quantity FROM cart_items ORDER BY product_id"),
        "order_lines": rows("SELECT product_id, variant_id FROM order_lines ORDER BY position"),
    }


async def _migrate_with_data(url: str) -> dict[str, Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for target in BEFORE:
                await connection.run_sync(_upgrade, url, target)
            await connection.run_sync(_seed)
            await connection.run_sync(_upgrade, url, "heads")
        async with engine.connect() as connection:
            return await connection.run_sync(_after)
    finally:
        await engine.dispose()


EXPECTED = {
    "variants": [("var_aaaaaaaaaaaa", "prd_aaaaaaaaaaaa", 0, "", 1999, "EUR", 7, "50 ml")],
    "product": [(7, 1999, 1999, "Kept Cream")],
    "cart_items": [
        ("prd_aaaaaaaaaaaa", "var_aaaaaaaaaaaa", 2),
        ("prd_gonegonegone", "var_gonegonegone", 2),  # shown as no longer sold
    ],
    "order_lines": [("prd_aaaaaaaaaaaa", "var_aaaaaaaaaaaa"), ("prd_gonegonegone", None)],
}


async def test_the_migration_gives_existing_rows_their_default_variant_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'before.db'}"

    assert await _migrate_with_data(url) == EXPECTED
    assert default_variant_id("prd_aaaaaaaaaaaa") == "var_aaaaaaaaaaaa"
    # The migrated store works as today's: the old cart item is a cart line of its variant.
    db = await open_database(Settings(data_dir=tmp_path, database_url=url))
    try:
        from shine_mcp.orders.cart import view

        cart = await view(db, "usr_1")
        assert [(line.variant_id, line.sold) for line in cart.lines] == [
            ("var_aaaaaaaaaaaa", True),
            ("var_gonegonegone", False),
        ]
    finally:
        await db.close()


@pytest.mark.postgres
async def test_the_migration_gives_existing_rows_their_default_variant_on_postgresql(
    postgres_url: str,
) -> None:
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text("DROP DATABASE IF EXISTS variants_migration"))
        await connection.execute(text("CREATE DATABASE variants_migration"))
    await admin.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/variants_migration"

    assert await _migrate_with_data(url) == EXPECTED


def test_a_product_in_records_without_variants_gets_one_default_variant() -> None:
    record = ProductIn.model_validate(
        {"handle": "solo", "brand": "B", "name": "Solo", "category": "serum", "price": "9.50", "stock": 4}
    )
    [variant] = record.variant_rows()

    assert (variant.id, variant.title, variant.price_minor, variant.stock) == (
        default_variant_id(product_id_for("solo")),
        "",
        950,
        4,
    )
