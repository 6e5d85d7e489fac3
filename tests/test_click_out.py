"""Where to buy (affiliate mode): a product's merchant page, shown as "Buy at <merchant>" with a disclosure,
reached through `/out/{product_id}`, which records the click and redirects only to a configured site."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from agent.cards import product_card
from shine_mcp.auth.accounts import upsert_user
from shine_mcp.auth.sessions import cookie_name, create_session
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.store.catalog import get_product, get_variants, upsert_products
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.search import SearchFilters, search_products
from shine_mcp.store.tables import Click, ProductVariant
from tests.checkout.conftest import CLEANSER, SERUM, Shop, in_own_task, open_shop, shop_settings
from web_shell.chat import chat_cookie_name, chat_token

LINKS = {"amazon.com": {"tag": "shop-20"}, "boots.com": {}}
PAGE = "https://www.amazon.com/dp/B00TTD9BRC?th=1&tag=someone-else"

# Each is stored as a product's buy_url (as a hostile or careless import might): none may be followed.
CRAFTED = [
    "//evil.com/dp/1",
    "https://evil.com@amazon.com/dp/1",
    "https://amazon.com.evil.com/dp/1",
    "https://evilamazon.com/dp/1",
    "javascript:alert(document.cookie)//https://amazon.com/",
    "data:text/html,<script>alert(1)</script>",
    "http://amazon.com/dp/1",  # a downgrade to plain http
    "HTTP://www.amazon.com/dp/1",
    "https://amazon.com/dp/1\r\nLocation: https://evil.com/",
    "https://amazon.com%0d%0aLocation:%20https://evil.com/",
    "https://amazon.com%0a.evil.com/",
    "https://amazon.com\t.evil.com/",
    "https://\u0430mazon.com/dp/1",  # Cyrillic a
    "https://\uff41mazon.com/dp/1",  # full-width a
    "https://xn--mazon-3ve.com/dp/1",  # a look-alike's punycode form
    "https://amazon.com\\@evil.com/",
    "https://amazon.com%2f@evil.com/",
    "https://amazon.com:8443@evil.com/",
    "https://amazon.com:443/dp/1",  # ports are refused altogether
    "https://evil.com#@amazon.com",
    "https://evil.com?.amazon.com",
    "https://evil.com\\.amazon.com",
    "https:/\\evil.com",
    "https:evil.com",
    "https:///evil.com",
    " https://evil.com",
    "https://127.0.0.1/dp/1",
    "https://[::1]/dp/1",
    "https://evil.com/https://amazon.com",
    "https://.amazon.com/dp/1",
]


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    async with in_own_task(open_shop(shop_settings(settings.data_dir, affiliate_links=LINKS))) as opened:
        yield opened


async def clicks(shop: Shop) -> list[Click]:
    async with shop.services.db.session() as session:
        return list((await session.execute(select(Click).order_by(col(Click.created_at)))).scalars())


async def test_the_click_out_goes_to_the_merchant_page_with_the_shops_tag(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)

    answer = await shop.http.get(f"/out/{SERUM}", params={"src": "widget", "conv": "chs_0123abcd"})

    assert answer.status_code == 302
    # The shop's own tag replaces one already in the link; the rest of the page address is kept.
    assert answer.headers["location"] == "https://www.amazon.com/dp/B00TTD9BRC?th=1&tag=shop-20"
    assert answer.headers["referrer-policy"] == "no-referrer"
    (click,) = await clicks(shop)
    assert (click.product_id, click.merchant, click.source) == (SERUM, "amazon.com", "widget")
    assert click.conversation_id == "chs_0123abcd"


async def test_a_site_without_parameters_is_linked_as_it_is(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url="https://www.boots.com/serum-10293")
    answer = await shop.http.get(f"/out/{SERUM}")
    assert answer.headers["location"] == "https://www.boots.com/serum-10293"
    assert [c.source for c in await clicks(shop)] == ["link"]


@pytest.mark.parametrize("crafted", CRAFTED)
async def test_no_crafted_merchant_link_is_followed(shop: Shop, crafted: str) -> None:
    await shop.set_product(SERUM, buy_url=crafted)

    answer = await shop.http.get(f"/out/{SERUM}", params={"src": "mcp"})
    found = await shop.call("get_product", {"product_id": SERUM})

    assert answer.status_code == 404 and "location" not in answer.headers
    assert found["where_to_buy"] is None
    assert await clicks(shop) == []


@pytest.mark.parametrize(
    "query",
    [
        {"url": "https://evil.com/"},
        {"next": "https://evil.com/"},
        {"src": "https://evil.com/"},
        {"variant": "https://evil.com/"},
        {"conv": "\r\nLocation: https://evil.com/"},
    ],
)
async def test_the_request_never_chooses_the_destination(shop: Shop, query: dict[str, str]) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    answer = await shop.http.get(f"/out/{SERUM}", params=query)
    assert answer.headers["location"] == "https://www.amazon.com/dp/B00TTD9BRC?th=1&tag=shop-20"
    (click,) = await clicks(shop)
    assert click.conversation_id is None or click.conversation_id == query.get("conv")
    assert click.source in ("widget", "mcp", "shop", "link")


async def test_a_product_without_a_merchant_page_has_no_click_out(shop: Shop) -> None:
    assert (await shop.http.get(f"/out/{SERUM}")).status_code == 404
    assert (await shop.http.get("/out/prd_000000000000")).status_code == 404
    assert await clicks(shop) == []


async def test_a_guests_click_holds_no_personal_data(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    token, _ = await create_session(
        shop.services.db, shop.settings, "gst_0123456789abcdef", now=utcnow(), guest=True
    )
    await shop.http.get(
        f"/out/{SERUM}",
        params={"src": "widget"},
        headers={
            "Cookie": f"{cookie_name(shop.settings)}={token}",
            "User-Agent": "Mozilla/5.0 (Macintosh) Secret/1.0",
            "X-Forwarded-For": "203.0.113.9",
        },
    )

    (click,) = await clicks(shop)
    assert click.user_id is None
    stored = json.dumps(click.model_dump(mode="json"))
    assert "203.0.113" not in stored and "Mozilla" not in stored and "gst_" not in stored
    columns = {c.name for c in Click.__table__.columns}  # type: ignore[attr-defined]
    assert columns == {
        "id", "product_id", "variant_id", "merchant", "source", "conversation_id", "user_id", "created_at"
    }  # fmt: skip


async def test_a_signed_in_shoppers_click_keeps_their_user_id(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    person = VerifiedPerson(email="ana@example.com", email_verified=True, name="Ana", google_sub="g-ana")
    user = await upsert_user(shop.services.db, person, now=utcnow())
    token, _ = await create_session(shop.services.db, shop.settings, user.id, now=utcnow())

    await shop.http.get(
        f"/out/{SERUM}", params={"src": "shop"}, headers={"Cookie": f"{cookie_name(shop.settings)}={token}"}
    )

    (click,) = await clicks(shop)
    assert (click.user_id, click.source) == (user.id, "shop")


async def test_the_report_counts_clicks_per_product_and_source(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    await shop.set_product(CLEANSER, buy_url="https://www.boots.com/cleanser")
    for product, source in [(SERUM, "widget"), (SERUM, "widget"), (SERUM, "mcp"), (CLEANSER, "shop")]:
        assert (await shop.http.get(f"/out/{product}", params={"src": source})).status_code == 302

    today = utcnow().date().isoformat()
    report = await shop.call("admin_clicks_report", {"start": today, "end": today})
    earlier = await shop.call("admin_clicks_report", {"start": "2026-01-01", "end": "2026-01-31"})
    refused = await shop.refused("admin_clicks_report", {"start": today, "end": today}, user="usr_someone")

    assert report["clicks"] == 4 and report["by_source"] == {"mcp": 1, "shop": 1, "widget": 2}
    rows = [(r["product_id"], r["merchant"], r["clicks"], r["by_source"]) for r in report["products"]]
    assert rows == [
        (SERUM, "amazon.com", 3, {"mcp": 1, "widget": 2}),
        (CLEANSER, "boots.com", 1, {"shop": 1}),
    ]
    assert report["products"][0]["name"].startswith("Retinaldehyde")
    assert earlier["clicks"] == 0 and earlier["products"] == []
    assert "admin" in refused


async def test_tool_results_carry_where_to_buy_with_the_disclosure(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    await shop.set_product(CLEANSER, buy_url="https://www.boots.com/cleanser")

    detail = await shop.call("get_product", {"product_id": SERUM})
    page = await shop.call("search_products", {"query": "cleanser", "limit": 50})

    where = detail["where_to_buy"]
    assert where["url"] == f"{shop.settings.base_url}/out/{SERUM}?src=mcp"
    assert where["merchant"] == "amazon.com"
    assert "commission" in where["disclosure"] and "amazon.com" in where["disclosure"]
    listed = {p["id"]: p["where_to_buy"] for p in page["products"]}
    assert listed[CLEANSER]["merchant"] == "boots.com"
    assert "Sold by boots.com" in listed[CLEANSER]["disclosure"]
    assert all(w is None for pid, w in listed.items() if pid != CLEANSER)


async def test_a_merchant_page_on_a_site_not_configured_is_not_shown(settings: Settings) -> None:
    plain = shop_settings(settings.data_dir)  # no SHINE_AFFILIATE_LINKS
    async with in_own_task(open_shop(plain)) as shop:
        await shop.set_product(SERUM, buy_url=PAGE)
        detail = await shop.call("get_product", {"product_id": SERUM})
        answer = await shop.http.get(f"/out/{SERUM}")
    assert detail["where_to_buy"] is None and answer.status_code == 404


async def test_adding_an_affiliate_only_product_to_the_cart_points_to_the_merchant(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE, stock=0)
    await shop.set_product(CLEANSER, stock=0)

    refusal = await shop.refused("add_to_cart", {"product_id": SERUM})
    plain_refusal = await shop.refused("add_to_cart", {"product_id": CLEANSER})

    assert "amazon.com" in refusal and f"/out/{SERUM}?src=mcp" in refusal
    assert "amazon.com" not in plain_refusal and "out of stock" in plain_refusal


async def test_the_widget_card_links_through_the_click_out_with_its_disclosure(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE, stock=0)
    detail = await shop.call("get_product", {"product_id": SERUM})

    card = product_card(detail)
    forged = product_card({**detail, "where_to_buy": {**detail["where_to_buy"], "url": "https://evil.com/x"}})

    assert card is not None and card["in_stock"] is False
    assert card["where_to_buy"]["url"] == f"{shop.settings.base_url}/out/{SERUM}?src=widget"
    assert card["where_to_buy"]["disclosure"] == detail["where_to_buy"]["disclosure"]
    assert forged is not None and forged["where_to_buy"] is None


def test_affiliate_sites_must_be_plain_domain_names(tmp_path: Path) -> None:
    for bad in ("https://amazon.com", "amazon.com/", "Amazon.com", "\u0430mazon.com", "*.amazon.com", "com"):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, affiliate_links={bad: {"tag": "x"}})
    assert Settings(data_dir=tmp_path, affiliate_links=LINKS).affiliate_links == LINKS


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_imports_keep_buy_urls_per_product_and_per_variant(shop: Shop, tmp_path: Path) -> None:
    products: list[dict[str, Any]] = [
        {
            "handle": "glow-serum", "brand": "Glow", "name": "Glow Serum", "category": "serum", "price": "20",
            "buy_url": "https://www.amazon.com/dp/GLOW",
        },
        {
            "handle": "tint", "brand": "Glow", "name": "Tint", "category": "sunscreen",
            "variants": [
                {"options": {"Shade": "Light"}, "price": "30", "buy_url": "https://www.amazon.com/dp/LIGHT"},
                {"options": {"Shade": "Deep"}, "price": "30", "buy_url": "https://www.amazon.com/dp/DEEP"},
            ],
        },
    ]  # fmt: skip
    parsed_json = read_catalog(_write(tmp_path / "c.json", json.dumps(products)))
    parsed_csv = read_catalog(
        _write(
            tmp_path / "c.csv",
            "handle,brand,name,category,price,options,buy_url\n"
            "mask,Glow,Mask,mask,12,,https://www.boots.com/mask\n"
            "balm,Glow,Balm,moisturiser,9,Size: 15 ml,https://www.boots.com/balm-15\n"
            "balm,Glow,Balm,moisturiser,15,Size: 50 ml,https://www.boots.com/balm-50\n"
            "bad,Glow,Bad,mask,5,,http://www.boots.com/bad\n",
        )
    )
    assert [str(e) for e in parsed_csv.errors] == [
        "c.csv, row 5, field 'buy_url': must be an https:// link to the product's page at the merchant"
    ]
    await upsert_products(shop.services.db, parsed_json.records + parsed_csv.records, source="import:test")

    by_handle = {r.handle: r.to_row("import:test") for r in parsed_json.records + parsed_csv.records}
    tint = await get_product(shop.services.db, by_handle["tint"].id)
    balm = await get_product(shop.services.db, by_handle["balm"].id)
    assert tint is not None and balm is not None
    assert tint.buy_url == "https://www.amazon.com/dp/LIGHT"  # the first variant's stands for the product
    variants: list[ProductVariant] = await get_variants(shop.services.db, tint.id)
    assert [v.buy_url for v in variants] == [
        "https://www.amazon.com/dp/LIGHT",
        "https://www.amazon.com/dp/DEEP",
    ]
    assert by_handle["glow-serum"].buy_url == "https://www.amazon.com/dp/GLOW"
    assert by_handle["mask"].buy_url == "https://www.boots.com/mask"

    detail = await shop.call("get_product", {"product_id": tint.id})
    deep = detail["variants"][1]["where_to_buy"]
    assert deep["url"].endswith(f"/out/{tint.id}?src=mcp&variant={variants[1].id}")
    answer = await shop.http.get(deep["url"].removeprefix(shop.settings.base_url))
    assert answer.headers["location"] == "https://www.amazon.com/dp/DEEP?tag=shop-20"
    (click,) = await clicks(shop)
    assert click.variant_id == variants[1].id
    balm_variants = await get_variants(shop.services.db, balm.id)
    assert [v.buy_url for v in balm_variants] == [
        "https://www.boots.com/balm-15",
        "https://www.boots.com/balm-50",
    ]


async def test_erasing_a_shoppers_data_unlinks_their_clicks_and_keeps_the_counts(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    person = VerifiedPerson(email="bo@example.com", email_verified=True, name="Bo", google_sub="g-bo")
    user = await upsert_user(shop.services.db, person, now=utcnow())
    token, _ = await create_session(shop.services.db, shop.settings, user.id, now=utcnow())
    await shop.http.get(f"/out/{SERUM}", headers={"Cookie": f"{cookie_name(shop.settings)}={token}"})

    erased = await shop.call("delete_my_data", {"confirm": True}, user=user.id)

    (click,) = await clicks(shop)
    assert click.user_id is None and click.product_id == SERUM
    assert erased["deleted"]["clicks_unlinked"] == 1


async def test_the_shop_page_links_through_the_click_out_as_the_shop(shop: Shop) -> None:
    (first,) = (await search_products(shop.services.db, SearchFilters(), limit=1)).products
    await shop.set_product(first.id, buy_url=PAGE)

    page = (await shop.http.get("/")).text
    found = re.search(r'<a class="buy" href="([^"]+)"[^>]*>Buy at amazon\.com</a>', page)
    assert found is not None
    assert html.unescape(found.group(1)) == f"/out/{first.id}?src=shop"
    assert "may earn a commission" in page
    assert (await shop.http.get(html.unescape(found.group(1)))).status_code == 302
    assert [c.source for c in await clicks(shop)] == ["shop"]


async def test_a_widget_click_is_tied_to_the_chat_it_came_from(shop: Shop) -> None:
    await shop.set_product(SERUM, buy_url=PAGE)
    chat = chat_token(shop.services, "chs_0123456789abcdef01234567")
    forged = "chs_0123456789abcdef01234567.0000"

    for token in (chat, forged):
        await shop.http.get(
            f"/out/{SERUM}",
            params={"src": "widget"},
            headers={"Cookie": f"{chat_cookie_name(shop.services)}={token}"},
        )

    recorded = [c.conversation_id for c in await clicks(shop)]
    assert sorted(recorded, key=str) == [None, "chs_0123456789abcdef01234567"]  # a forged token: none
