"""Screens compared against approved images (tests/e2e/approved/, see approved.py) at 1280×800 and 360×740:
the demo page, the widget open before chatting and the simulated payment page, the screens that hold still.
A layout break, such as the widget's header gone, fails the comparison."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.advisor.web import post_chat, shine_web
from tests.e2e.approved import APPROVED, difference, differs_from_approved, screen
from tests.e2e.browser import SIZES, new_context, playwright_api
from tests.e2e.test_widget import open_widget

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with shine_web(tmp_path_factory.mktemp("screens")) as (url, _):
        yield url


def payment_link(shop: str) -> str:
    """A simulated payment page for one cleanser, reached through the chat API as the widget would."""
    with httpx.Client(base_url=shop, timeout=60) as client:
        response, _ = post_chat(client, {"message": "show me cleansers under $20"})
        client.headers["X-Shine-Chat"] = response.headers["x-shine-chat"]
        post_chat(client, {"message": "add the first one to my cart"})
        _, events = post_chat(client, {"confirm_checkout": True, "message": "Check out my cart."})
    found = re.search(r"https?://[^\"\s]*/simulated-checkout/[\w-]+", json.dumps([e.data for e in events]))
    assert found, [e.event for e in events]
    return found.group(0)


@pytest.mark.parametrize("size", list(SIZES))
def test_stable_screens_match_their_approved_images(browser: object, shop: str, size: str) -> None:
    context = new_context(browser, size)
    page = context.new_page()
    page.goto(shop)
    page.wait_for_load_state("networkidle")
    problems = [differs_from_approved(page, f"{size}-demo-page")]
    dialog = open_widget(page, shop)
    page.wait_for_load_state("networkidle")
    playwright_api.expect(dialog.get_by_role("textbox", name="Message")).to_be_visible()  # type: ignore[attr-defined]
    problems.append(differs_from_approved(page, f"{size}-widget-open"))
    payment = context.new_page()
    payment.goto(payment_link(shop))
    playwright_api.expect(payment.get_by_role("heading", name="Simulated checkout")).to_be_visible()
    payment.wait_for_load_state("networkidle")
    problems.append(differs_from_approved(payment, f"{size}-simulated-payment"))
    context.close()
    assert [p for p in problems if p] == []


def test_a_widget_without_its_header_fails_the_comparison(browser: object, shop: str) -> None:
    context = new_context(browser, "desktop")
    page = context.new_page()
    dialog = open_widget(page, shop)
    page.wait_for_load_state("networkidle")
    playwright_api.expect(dialog.get_by_role("textbox", name="Message")).to_be_visible()  # type: ignore[attr-defined]
    # A deliberate layout break: the header hidden inside the widget's shadow root.
    page.evaluate(
        """() => { for (const host of document.querySelectorAll('*')) if (host.shadowRoot) {
             const style = document.createElement('style');
             style.textContent = '.head{display:none !important}';
             host.shadowRoot.appendChild(style); } }"""
    )
    found = difference(screen(page, "desktop-widget-open-broken"), APPROVED / "desktop-widget-open.png")
    context.close()
    assert not found.small, found
