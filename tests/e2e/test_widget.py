"""End to end in a real browser: Debian's Chromium driven by Playwright opens the demo shop served by
uvicorn, opens the chat widget, asks for products, sends a real face photo, and (when the checkout tools
exist) adds to the cart and pays on the simulated checkout page. On a desktop and at 360×740. Screenshots
go to `test-artifacts/`."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.advisor.web import shine_web
from tests.e2e.browser import ARTIFACTS, playwright_api, shot
from tests.models.conftest import ASTRONAUT

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(settings: object, tmp_path: Path) -> Iterator[str]:
    with shine_web(tmp_path) as (url, _):
        yield url


@pytest.fixture
def selfie(tmp_path: Path) -> Path:
    path = tmp_path / "selfie.jpg"
    out = io.BytesIO()
    Image.open(ASTRONAUT).convert("RGB").save(out, format="JPEG", quality=92)
    path.write_bytes(out.getvalue())
    return path


def ask(page: object, message: str) -> None:
    box = page.get_by_role("textbox", name="Message")  # type: ignore[attr-defined]
    box.fill(message)
    box.press("Enter")


def wait_idle(page: object) -> None:
    """The reply is over when the Send button is enabled again."""
    playwright_api.expect(page.locator(".send")).to_be_enabled(timeout=30_000)  # type: ignore[attr-defined]


def open_widget(page: object, url: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    launcher = page.get_by_role("button", name="Skin advisor")  # type: ignore[attr-defined]
    playwright_api.expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    playwright_api.expect(page.get_by_role("dialog", name="Shine skincare advisor")).to_be_visible()  # type: ignore[attr-defined]
    playwright_api.expect(page.locator(".badge")).to_have_text("Offline advisor")  # type: ignore[attr-defined]


def test_a_shopper_asks_for_products_sends_a_selfie_and_checks_out(
    browser: object, shop: str, selfie: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    page = context.new_page()
    expect = playwright_api.expect
    open_widget(page, shop)

    # The shop's loud button styles stop at the shadow root.
    send_colour = page.locator(".send").evaluate("b => getComputedStyle(b).backgroundColor")
    assert send_colour != "rgb(255, 105, 180)"  # hotpink

    ask(page, "find a moisturiser for dry skin under $30")
    cards = page.locator("article.card")
    expect(cards.first).to_be_visible(timeout=30_000)
    wait_idle(page)
    expect(page.locator(".msg.bot").last).to_contain_text("moisturisers for dry skin under $30)")
    assert cards.count() >= 1
    # a product without an image gets a placeholder, not a broken link
    assert page.locator("article.card img[src$='/null']").count() == 0
    prices = [float(re.sub(r"[^\d.]", "", t)) for t in cards.locator(".price").all_inner_texts()]
    assert prices and all(p <= 30 for p in prices)
    shot(page, "widget-desktop-products")
    page.locator(".cards").first.screenshot(path=str(ARTIFACTS / "widget-product-cards.png"))

    page.locator("input[type=file]").set_input_files(str(selfie))
    expect(page.locator(".pending")).to_contain_text("Photo ready", timeout=30_000)
    ask(page, "what do you see?")
    report = page.get_by_role("region", name="Skin report")
    expect(report).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(page.locator(".msg.user img.thumb")).to_be_visible()
    expect(report).to_contain_text("Skin type")
    shot(page, "widget-desktop-skin-report")
    report.screenshot(path=str(ARTIFACTS / "widget-skin-report-card.png"))

    history = page.request.get(f"{shop}/api/chat").json()
    assert history["capabilities"]["cart"] and history["capabilities"]["checkout"]
    page.get_by_role("button", name=re.compile(r"^Add .* to cart$")).first.click()
    cart = page.get_by_role("region", name="Your cart").last
    expect(cart).to_be_visible(timeout=30_000)
    wait_idle(page)
    cart.get_by_role("button", name="Checkout").click()
    pay_link = page.get_by_role("region", name="Checkout").get_by_role("link")
    expect(pay_link).to_be_visible(timeout=30_000)
    shot(page, "widget-desktop-checkout")
    with context.expect_page() as opened:
        pay_link.click()
    checkout = opened.value
    checkout.get_by_role("button", name=re.compile("pay", re.IGNORECASE)).click()
    expect(checkout.get_by_text("Simulated checkout").first).to_be_visible()
    # Back on the shop's success page, read from the database: paid (or already handed to fulfilment).
    expect(checkout.locator(".status")).to_have_text(re.compile("^(paid|fulfilling)$"), timeout=30_000)
    shot(checkout, "simulated-checkout-paid")
    checkout.close()

    ask(page, "where is my order?")
    wait_idle(page)
    expect(page.locator(".msg.bot").last).to_contain_text(re.compile("paid|being prepared", re.IGNORECASE))
    shot(page, "widget-desktop-order-paid")

    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Skin advisor")).to_be_focused()
    expect(page.get_by_role("button", name="Skin advisor")).to_have_attribute("aria-expanded", "false")
    context.close()


def test_the_widget_works_on_a_360_pixel_wide_phone(browser: object, shop: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True, is_mobile=True)  # type: ignore[attr-defined]
    page = context.new_page()
    expect = playwright_api.expect
    open_widget(page, shop)

    panel = page.get_by_role("dialog", name="Shine skincare advisor")
    box = panel.bounding_box()
    assert box is not None and box["width"] == 360 and box["x"] == 0
    ask(page, "show me sunscreens")
    expect(page.locator("article.card").first).to_be_visible(timeout=30_000)
    wait_idle(page)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    first_card = page.locator("article.card").first.bounding_box()
    assert (
        first_card is not None and first_card["x"] >= 0 and first_card["x"] + first_card["width"] <= 360 + 200
    )
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    shot(page, "widget-phone-360")
    context.close()


def test_the_reply_is_announced_to_screen_readers_and_usable_by_keyboard(browser: object, shop: str) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 768})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(shop)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the shop's two links, then the launcher
    launcher = page.get_by_role("button", name="Skin advisor")
    playwright_api.expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    playwright_api.expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    page.keyboard.type("help")
    page.keyboard.press("Enter")
    log = page.get_by_role("log", name="Conversation")
    playwright_api.expect(log).to_contain_text("Try:", timeout=30_000)
    assert log.get_attribute("aria-live") == "polite"
    context.close()


def chat_then_open_your_data(page: object, shop: str) -> object:
    """A shopper who has chatted once opens the 'Your data' card."""
    open_widget(page, shop)
    ask(page, "find a cleanser")
    wait_idle(page)
    page.get_by_role("button", name="Your data").click()  # type: ignore[attr-defined]
    return page.get_by_role("region", name="Your data")  # type: ignore[attr-defined]


def test_a_shopper_downloads_and_deletes_their_data_from_the_widget(browser: object, shop: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)  # type: ignore[attr-defined]
    page = context.new_page()
    expect = playwright_api.expect
    card = chat_then_open_your_data(page, shop)
    expect(card).to_be_visible()
    expect(card.get_by_role("button", name="Close my account…")).to_have_count(0)  # a guest has no account
    with page.expect_download() as download_info:
        card.get_by_role("button", name="Download my data").click()
    download = download_info.value
    assert download.suggested_filename == "shine-my-data.json"
    assert "find a cleanser" in Path(download.path()).read_text()

    card.get_by_role("button", name="Delete my data…").click()
    expect(card).to_contain_text("cannot be undone")
    shot(page, "widget-your-data")
    card.get_by_role("button", name="Cancel").click()  # changing one's mind deletes nothing
    card.get_by_role("button", name="Delete my data…").click()
    card.get_by_role("button", name="Yes, delete my data").click()
    log = page.get_by_role("log", name="Conversation")
    expect(log).to_contain_text("Your data has been deleted.", timeout=15_000)
    shot(page, "widget-data-deleted")

    page.reload()
    open_widget(page, shop)
    expect(log).not_to_contain_text("find a cleanser")
    context.close()


def test_a_guest_signs_in_from_the_widget_then_closes_the_account(browser: object, shop: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    page = context.new_page()
    expect = playwright_api.expect
    card = chat_then_open_your_data(page, shop)
    expect(card).to_contain_text("You are chatting as a guest")
    card.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill("nora@example.com")  # the loopback dev sign-in
    page.get_by_label("Name (optional)").fill("Nora")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(shop + "/")

    open_widget(page, shop)
    log = page.get_by_role("log", name="Conversation")
    expect(log).to_contain_text("find a cleanser")  # the guest's chat came along
    page.get_by_role("button", name="Your data").click()
    card = page.get_by_role("region", name="Your data")
    expect(card).to_contain_text("Signed in as Nora")
    card.get_by_role("button", name="Close my account…").click()
    expect(card).to_contain_text("sign out everywhere")
    card.get_by_role("button", name="Yes, close my account").click()
    expect(log).to_contain_text("Your account is closed", timeout=15_000)
    shot(page, "widget-account-closed")

    page.reload()
    open_widget(page, shop)
    page.get_by_role("button", name="Your data").click()
    expect(page.get_by_role("region", name="Your data")).to_contain_text("You are chatting as a guest")
    context.close()
