"""After paying (or not), "Return to the shop" leads back to the shop page the shopper chatted from, when it
is a page of this Shine or of an allowed shop; anything else (another site, a forged cookie) falls back to
the shop's home, so the link can never send anyone elsewhere."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from shine_mcp.config import Settings
from tests.advisor.web import post_chat, shine_web

SHOP = "https://shop.example"
CRAFTED = [
    "https://evil.example/",
    "https://shop.example.evil.example/skincare",
    "https://shop.example@evil.example/",
    "http://shop.example/",  # the allowed origin is https
    "//evil.example/",
    "javascript:alert(1)//https://shop.example/",
    "data:text/html,<script>alert(1)</script>",
    'https://shop.example/"><script>alert(1)</script>',
    "https://shop.example\\@evil.example/",
    "https://shop.example/ x",
    "https://shop.example/" + "a" * 1200,
    "",
]


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    return tmp_path  # the `settings` fixture has put a copy of the demo-catalog database here


def return_link(page: httpx.Response) -> str:
    found = re.search(r'<a href="([^"]*)">Return to the shop</a>', page.text)
    assert found is not None, page.text
    return found.group(1).replace("&amp;", "&")


def test_the_return_link_leads_to_the_page_the_chat_was_on(data_dir: Path) -> None:
    page = f"{SHOP}/collections/serums?sort=price&page=2"
    with (
        shine_web(data_dir, allowed_origins=[SHOP]) as (url, _),
        httpx.Client(base_url=url, timeout=30, headers={"Origin": SHOP}) as browser,
    ):
        before = browser.get("/checkout/cancel?order_id=ord_0")
        post_chat(browser, {"message": "hello", "page_url": page + "#reviews"})
        after = browser.get("/checkout/cancel?order_id=ord_0")

    assert return_link(before) == SHOP  # the first allowed shop, as before any chat
    assert return_link(after) == page


def test_the_widget_on_shines_own_demo_page_comes_back_to_it(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as browser:
        post_chat(browser, {"message": "hello", "page_url": f"{url}/?from=chat"})
        back = browser.get("/checkout/cancel?order_id=ord_0")

    assert return_link(back) == f"{url}/?from=chat"


def test_no_crafted_page_makes_the_return_link_leave_the_shop(data_dir: Path) -> None:
    with shine_web(data_dir, allowed_origins=[SHOP]) as (url, settings):
        for crafted in CRAFTED:
            with httpx.Client(base_url=url, timeout=30, headers={"Origin": SHOP}) as browser:
                post_chat(browser, {"message": "hello", "page_url": crafted})
                assert return_link(browser.get("/checkout/cancel?order_id=ord_0")) == SHOP, crafted
            # A cookie is the browser's to change: the page is checked again when it is read.
            forged = {"shine_shop_page": quote(crafted, safe="")}
            with httpx.Client(base_url=url, timeout=30, cookies=forged) as browser:
                assert return_link(browser.get("/checkout/cancel?order_id=ord_0")) == SHOP, crafted
