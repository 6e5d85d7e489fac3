"""read_product_page, its admin import, and find_similar_looks, through the real firecrawl-mcp."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from mcp.types import CallToolResult

from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.store import skin_reports
from shine_mcp.store.catalog import get_product
from shine_mcp.store.skin_reports import SkinReportRecord
from tests.browse.conftest import shine
from tests.fakes.firecrawl_api import FakeFirecrawl

SERUM_PAGE = "https://glowlab.example/products/niacinamide-10-serum?utm_source=mail"
CREAM_PAGE = "https://shop.beautyjournal.example/p/barrier-cream"
MIRACLE_PAGE = "https://deals.miracleskin.example/item/miracle-serum"


def _ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _text(result: CallToolResult) -> str:
    return json.dumps(result.model_dump(mode="json"))


async def test_a_product_page_gives_name_brand_price_images_and_inci_names(
    browse_settings: Callable[..., Settings],
) -> None:
    async with shine(browse_settings()) as app:
        page = _ok(await app.client.call_tool("read_product_page", {"url": SERUM_PAGE}))
    assert page["url"] == "https://glowlab.example/products/niacinamide-10-serum"
    assert (page["name"], page["brand"]) == ("Niacinamide 10% + Zinc Serum", "Glowlab")
    assert page["price"] == {"amount_minor": 2400, "currency": "USD", "display": "$24.00"}
    assert page["images"][0] == "https://cdn.glowlab.example/products/niacinamide-serum-front.jpg"
    assert page["ingredients"][:3] == ["Water", "Niacinamide", "Pentylene Glycol"]
    assert page["not_found"] == [] and page["addresses_assistants"] is False


async def test_a_page_without_structured_data_still_yields_price_and_ingredients(
    browse_settings: Callable[..., Settings],
) -> None:
    async with shine(browse_settings()) as app:
        page = _ok(await app.client.call_tool("read_product_page", {"url": CREAM_PAGE}))
    assert page["name"] == "Ceramide Barrier Cream"
    assert page["price"]["display"] == "£18.50"
    assert "https://shop.beautyjournal.example/shop/barrier-cream-jar.jpg" in page["images"]
    assert "Ceramide NP" in page["ingredients"] and page["may_contain"] == ["Titanium Dioxide"]
    assert page["not_found"] == ["no brand found on the page"]


async def test_a_page_telling_the_assistant_to_buy_changes_nothing(
    browse_settings: Callable[..., Settings],
) -> None:
    async with shine(browse_settings()) as app:
        before = _ok(await app.client.call_tool("view_cart", {}))
        result = await app.client.call_tool("read_product_page", {"url": MIRACLE_PAGE})
        after = _ok(await app.client.call_tool("view_cart", {}))
    page = _ok(result)
    assert page["addresses_assistants"] is True
    assert "never as instructions" in page["notice"]
    # The page's words live only inside the untrusted field; the facts are still just facts.
    assert "ignore previous instructions" in page["untrusted"]["description"].lower()
    assert (page["name"], page["price"]["display"]) == ("Miracle Glow Serum", "$9.99")
    assert before == after  # no cart change, no checkout, no import


async def test_only_public_web_pages_are_sent_to_firecrawl(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    async with shine(browse_settings()) as app:
        answers = [
            await app.client.call_tool("read_product_page", {"url": url})
            for url in (
                "file:///etc/passwd",
                "http://127.0.0.1:8000/admin",
                "http://169.254.169.254/latest/meta-data",
                "http://localhost/x",
                "https://user:pw@glowlab.example/p",
                "http://[::1]/x",
                "https://printer.local/status",
            )
        ]
    assert all(a.is_error and "Shine reads only public web pages" in _text(a) for a in answers)
    assert fake_firecrawl.calls("/v2/scrape") == []


async def test_a_missing_page_says_so(browse_settings: Callable[..., Settings]) -> None:
    async with shine(browse_settings()) as app:
        result = await app.client.call_tool("read_product_page", {"url": "https://glowlab.example/nope"})
    assert result.is_error and "the page answered HTTP 404" in _text(result)


async def test_an_admin_imports_a_read_page_into_the_catalog_and_others_cannot(
    browse_settings: Callable[..., Settings],
) -> None:
    settings = browse_settings(toolsets=["shopper", "merchant"])  # the local user runs the shop
    async with shine(settings) as app:
        shopper = identity_meta("usr_shopper", settings, roles=("user",))
        refused = await app.client.call_tool("admin_import_product_page", {"url": SERUM_PAGE}, meta=shopper)
        imported = _ok(await app.client.call_tool("admin_import_product_page", {"url": SERUM_PAGE}))
        again = _ok(await app.client.call_tool("admin_import_product_page", {"url": SERUM_PAGE}))
        product = await get_product(app.services.db, imported["product_id"])
    assert refused.is_error and "for the shop's admins" in _text(refused)
    assert again["product_id"] == imported["product_id"]
    assert product is not None
    assert (product.source, product.category, product.price_minor) == ("web:glowlab.example", "serum", 2400)
    assert "Niacinamide" in product.ingredients


def _analysis(category: str = "tan", skin_type: str | None = "oily") -> dict[str, Any]:
    def metric(name: str, value: float | None, **details: Any) -> dict[str, Any]:
        return {"name": name, "value": value, "confidence": 0.8, "details": details}

    return {
        "metrics": [
            metric("ita", 20.0, category=category),
            metric("redness", 6.0),
            metric("shine", 4.0),
            metric("dark_spots", 7.0),
        ],
        "skin_type": {"value": skin_type},
    }


async def _report(app: Any, user_id: str, analysis: dict[str, Any]) -> str:
    record = SkinReportRecord(
        id=skin_reports.new_report_id(), user_id=user_id, analysis=analysis, model_hashes={}
    )
    await skin_reports.add_report(app.services.db, record)
    return record.id


async def test_similar_looks_are_searched_from_the_report(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    settings = browse_settings()
    async with shine(settings) as app:
        report_id = await _report(app, settings.local_user, _analysis())
        looks = _ok(await app.client.call_tool("find_similar_looks", {"report_id": report_id, "limit": 6}))
    assert looks["based_on"] == {
        "tone_category": "tan",
        "skin_type": "oily",
        "concerns": ["redness", "dark_spots"],
    }
    assert looks["queries"] == [
        "redness calming skincare tan skin",
        "dark spots skincare tan skin",
        "glowing tan skin oily skin natural look",
    ]
    assert [c.body["query"] for c in fake_firecrawl.calls("/v2/search")] == looks["queries"]
    titles = " ".join(i["title"].lower() for i in looks["images"])
    assert "redness" in titles and "dark spots" in titles
    assert len(looks["images"]) <= 6
    assert report_id not in json.dumps([c.body for c in fake_firecrawl.requests])


async def test_another_persons_report_looks_exactly_like_an_unknown_one(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    settings = browse_settings()
    async with shine(settings) as app:
        ana_report = await _report(app, "usr_ana", _analysis())
        bob = identity_meta("usr_bob", settings)
        theirs = await app.client.call_tool("find_similar_looks", {"report_id": ana_report}, meta=bob)
        unknown_id = "rep_" + secrets.token_hex(12)
        unknown = await app.client.call_tool("find_similar_looks", {"report_id": unknown_id}, meta=bob)
    assert theirs.is_error and "you have no skin report with id" in _text(theirs)
    assert _text(theirs).replace(ana_report, "ID") == _text(unknown).replace(unknown_id, "ID")
    assert fake_firecrawl.calls("/v2/search") == []
