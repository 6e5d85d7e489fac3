"""The web shell's HTML pages (web_shell/templates/, rendered by web_shell/templating.py): text a shopper, a
merchant's catalog or an MCP client controls is shown as text on every page, and every page carries the
same security headers, set in one place."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.requests import Request

from shine_mcp.config import Settings
from shine_mcp.store.search import SearchFilters, search_products
from tests.checkout.conftest import Shop, in_own_task, open_shop, shop_settings
from web_shell.templating import CSP, SECURITY_HEADERS, TEMPLATES_DIR, render, templates

HOSTILE = "<script>alert(\"x\")</script>' onmouseover='alert(1)' {{ 7*7 }}"
# What the hostile text becomes when escaped: no tag, no quote that could end an attribute.
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39; onmouseover=&#39;alert(1)&#39; {{ 7*7 }}"


def assert_shown_as_text(page: str, where: str) -> None:
    assert "<script>alert" not in page, where
    assert "onmouseover='alert" not in page, where
    assert ESCAPED in page, where  # "{{ 7*7 }}" kept as typed: no template ran it


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def request_for(path: str = "/") -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""})


# Every template with every value it shows set to hostile text. A new template must be added here.
HOSTILE_PAGES: dict[str, dict[str, Any]] = {
    "notice.html": {
        "heading": HOSTILE,
        "paragraphs": [HOSTILE, HOSTILE],  # an error text from a sign-in service, a refusal's reason
        "link": {"href": HOSTILE, "label": HOSTILE},
        "back_to_shop": HOSTILE,
        "back_label": HOSTILE,
    },
    "dev_sign_in.html": {"csrf": HOSTILE, "next_path": HOSTILE},
    "sign_out.html": {"csrf": HOSTILE},
    "consent.html": {
        "client_name": HOSTILE,  # an MCP client names itself when it registers
        "client_host": HOSTILE,
        "account": HOSTILE,
        "granted": [HOSTILE],
        "admin_refused": True,
        "redirect_host": HOSTILE,
        "csrf": HOSTILE,
        "request_id": HOSTILE,
    },
    "widget_signed_in.html": {"who": HOSTILE, "handoff": "{}", "nonce": HOSTILE, "script": ""},
    "order.html": {
        "heading": HOSTILE,
        "simulated": True,
        "order_id": HOSTILE,
        "order_status": HOSTILE,
        "next_steps": HOSTILE,
        "tracking": HOSTILE,  # the carrier and number the fulfilment partner sent
        "extra": HOSTILE,
        "rows": [(HOSTILE, 1, HOSTILE)],  # product names from the catalog
        "total": HOSTILE,
        "back_to_shop": HOSTILE,  # the shop page the shopper chatted from
        "back_label": HOSTILE,
    },
    "simulated_checkout.html": {
        "rows": [(HOSTILE, 2, HOSTILE)],
        "total": HOSTILE,
        "state": "open",
        "session_id": HOSTILE,
        "csrf": HOSTILE,
    },
    "simulated_portal.html": {
        "charges": [HOSTILE],
        "csrf": HOSTILE,
        "action": HOSTILE,
        "back_to_shop": HOSTILE,
    },
}


def test_every_page_template_shows_hostile_values_as_text() -> None:
    pages = {p.name for p in TEMPLATES_DIR.glob("*.html")} - {"base.html", "demo.html", "_lines.html"}
    assert pages == set(HOSTILE_PAGES), "each page template needs hostile values in HOSTILE_PAGES"
    for name, context in HOSTILE_PAGES.items():
        page = render(request_for(), name, title=HOSTILE, **context).body.decode()
        assert_shown_as_text(page, name)
        assert f"<title>{ESCAPED} · Shine</title>" in page, name


def test_the_widget_handoff_cannot_close_its_script_element() -> None:
    """The one value a page does not escape (JSON for the popup's script) is written with `<` escaped."""
    page = render(
        request_for(),
        "widget_signed_in.html",
        title="Signed in",
        who="ana@example.com",
        handoff='{"state": "\\u003c/script\\u003e"}',
        nonce="n",
        script="",
    ).body.decode()
    assert page.count("</script>") == 2


def test_the_demo_page_shows_hostile_tiles_as_text() -> None:
    tile = {
        "image": SimpleNamespace(url=HOSTILE, width=10, height=10, srcset=HOSTILE),
        "brand": HOSTILE,
        "name": HOSTILE,
        "price": HOSTILE,
        "buy": SimpleNamespace(url=HOSTILE, merchant=HOSTILE, disclosure=HOSTILE),
    }
    response = templates.TemplateResponse(request_for(), "demo.html", {"tiles": [tile], "sizes": HOSTILE})
    assert_shown_as_text(response.body.decode(), "demo.html")


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    async with in_own_task(open_shop(shop_settings(settings.data_dir))) as opened:
        yield opened


async def test_a_hostile_product_name_is_text_on_the_shop_checkout_and_order_pages(shop: Shop) -> None:
    shown = (await search_products(shop.services.db, SearchFilters(), limit=1)).products[0]
    await shop.set_product(shown.id, name=HOSTILE, brand=HOSTILE)
    assert_shown_as_text((await shop.http.get("/")).text, "the demo shop")

    result = await shop.buy(shown.id)
    checkout = local(result["checkout_url"])
    page = (await shop.http.get(checkout)).text
    assert_shown_as_text(page, "the simulated checkout")
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    paid = await shop.http.post(f"{checkout}/pay", data={"csrf": token.group(1)})
    order_page = (await shop.http.get(local(paid.headers["location"]))).text
    assert f"Order <code>{result['order']['order_id']}</code>" in order_page
    assert_shown_as_text(order_page, "the order page")


async def test_every_html_page_carries_the_same_security_headers(shop: Shop) -> None:
    checkout = local((await shop.buy())["checkout_url"])
    pages = {
        "the demo shop": await shop.http.get("/"),
        "dev sign-in": await shop.http.get("/auth/dev"),
        "an expired sign-in form": await shop.http.post("/auth/dev", data={"csrf": "x", "email": "a@b.co"}),
        "sign out": await shop.http.get("/auth/logout"),
        "a refused widget sign-in": await shop.http.get("/auth/widget/start?origin=https://evil.example"),
        "no checkout named": await shop.http.get("/checkout/success"),
        "an unknown checkout": await shop.http.get("/checkout/success?session_id=cs_test_unknown"),
        "a cancelled checkout": await shop.http.get("/checkout/cancel?order_id=ord_0"),
        "the simulated checkout": await shop.http.get(checkout),
        "an unknown simulated checkout": await shop.http.get("/simulated-checkout/cs_sim_unknown"),
        "an invalid portal link": await shop.http.get("/simulated-portal/forged"),
        "an unavailable click-out": await shop.http.get("/out/prd_unknown"),
    }
    for where, response in pages.items():
        assert response.headers["content-type"].startswith("text/html"), where
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (where, name)
        policy = dict(d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
        for name in ("frame-ancestors", "base-uri", "form-action"):
            assert policy[name] == CSP[name], (where, name)
        if where != "the demo shop":  # the shop page runs the widget's script and shows product pictures
            assert policy == dict(CSP), where


def test_the_templates_ship_with_the_package() -> None:
    project = tomllib.loads((TEMPLATES_DIR.parent.parent / "pyproject.toml").read_text())
    assert "templates/**/*" in project["tool"]["setuptools"]["package-data"]["web_shell"]
