"""End to end in a real browser: Debian's Chromium driven by Playwright opens the demo shop served by
uvicorn, opens the chat widget, asks for products, sends a real face photo, adds to the cart and pays on the
simulated checkout page, on a desktop (1280×800) and a phone (360×740). Controls are found the way a person
finds them, by role and the words they show; on every screen each visible button's and link's text must
be readable (contrast ≥ 4.5:1 against its own background) and axe-core must find nothing. Screenshots of
each screen, at both sizes, go to `test-artifacts/` (to look at; test_screens.py compares the stable ones
against approved images)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.advisor.web import shine_web
from tests.e2e.browser import (
    ARTIFACTS,
    MIN_CONTRAST,
    SIZES,
    axe_violations,
    contrast,
    new_context,
    playwright_api,
    shot,
    unreadable_controls,
)
from tests.models.conftest import ASTRONAUT

pytestmark = pytest.mark.slow
# How the shop is set up is the merchant's business (start-up banner, /healthz), never the shopper's.
SET_UP_WORDS = re.compile(r"offline|AI model|configured|rule-based|Claude|Stripe|\blocal\b", re.IGNORECASE)


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
    send = page.get_by_role("button", name="Send")  # type: ignore[attr-defined]
    playwright_api.expect(send).to_be_enabled(timeout=30_000)


def open_widget(page: object, url: str) -> object:
    page.goto(url)  # type: ignore[attr-defined]
    launcher = page.get_by_role("button", name="Skin advisor")  # type: ignore[attr-defined]
    playwright_api.expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    dialog = page.get_by_role("dialog", name="Shine skincare advisor")  # type: ignore[attr-defined]
    playwright_api.expect(dialog).to_be_visible()
    playwright_api.expect(launcher).to_be_hidden()  # not left in the tab order behind the open chat
    return dialog


def looks_right(page: object, name: str) -> None:
    """What a person meets on this screen: a screenshot to look at, controls whose words can be read, and
    nothing axe-core finds (all impacts, not just serious and critical ones)."""
    shot(page, name)
    assert unreadable_controls(page) == [], name
    assert axe_violations(page) == [], name


def suggestions(page: object) -> object:
    """The product cards of the latest answer."""
    return page.get_by_role("list", name="Suggested products").last.get_by_role("listitem")  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", list(SIZES))
def test_a_shopper_finds_products_sends_a_selfie_and_pays_on_every_screen_size(
    browser: object, shop: str, selfie: Path, size: str
) -> None:
    context = new_context(browser, size)
    page = context.new_page()
    expect = playwright_api.expect
    page.goto(shop)
    looks_right(page, f"{size}-demo-page")
    dialog = open_widget(page, shop)
    log = page.get_by_role("log", name="Conversation")
    expect(log).not_to_contain_text(SET_UP_WORDS)  # the shopper is not told how the shop is set up

    # The shop's loud button styles stop at the shadow root.
    send_colour = page.get_by_role("button", name="Send").evaluate("b => getComputedStyle(b).backgroundColor")
    assert send_colour != "rgb(255, 105, 180)"  # hotpink

    ask(page, "find a moisturiser for dry skin under $30")
    cards = suggestions(page)
    expect(cards.first).to_be_visible(timeout=30_000)
    wait_idle(page)
    expect(log).to_contain_text("moisturisers for dry skin under $30")
    expect(log).not_to_contain_text(SET_UP_WORDS)
    expect(cards.first).to_be_in_viewport(ratio=0.95)  # the words follow the cards, not push them away
    assert cards.count() >= 2
    # a product without an image gets a placeholder, not a broken link
    assert page.locator("li.card img[src$='/null']").count() == 0
    prices = [float(re.sub(r"[^\d.]", "", t)) for t in cards.locator(".price").all_inner_texts()]
    assert prices and all(p <= 30 for p in prices)
    width = SIZES[size]["viewport"]["width"]
    panel = dialog.bounding_box()  # type: ignore[attr-defined]
    assert panel is not None and panel["x"] >= 0 and panel["x"] + panel["width"] <= width
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    looks_right(page, f"{size}-widget-products")
    page.get_by_role("list", name="Suggested products").last.screenshot(
        path=str(ARTIFACTS / f"{size}-widget-product-cards.png")
    )

    page.get_by_label("Attach a photo of your face").set_input_files(str(selfie))
    expect(page.get_by_text("Photo ready")).to_be_visible(timeout=30_000)
    ask(page, "what do you see?")
    report = page.get_by_role("article", name="Skin report")
    expect(report).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(log.get_by_role("img", name="Your photo")).to_be_visible()
    expect(report).to_contain_text("Skin type")
    looks_right(page, f"{size}-widget-skin-report")
    report.screenshot(path=str(ARTIFACTS / f"{size}-widget-skin-report-card.png"))

    history = page.request.get(f"{shop}/api/chat").json()
    assert history["capabilities"]["cart"] and history["capabilities"]["checkout"]
    # Its spoken name starts with the words it shows, then says which product.
    product = cards.first.locator(".name").inner_text()
    add = cards.first.get_by_role("button", name=re.compile(r"^Add to cart\b"))
    expect(add).to_have_accessible_name(re.compile(rf"^Add to cart\W+{re.escape(product)}$"))
    add.click()
    cart = page.get_by_role("article", name="Your cart").last
    expect(cart).to_be_visible(timeout=30_000)
    wait_idle(page)
    expect(cart).to_contain_text(product)
    looks_right(page, f"{size}-widget-cart")
    cart.get_by_role("button", name="Checkout").click()
    pay = page.get_by_role("article", name="Checkout").get_by_role("link", name="Open the simulated checkout")
    expect(pay).to_be_visible(timeout=30_000)
    wait_idle(page)
    assert contrast(pay) >= MIN_CONTRAST
    looks_right(page, f"{size}-widget-checkout")

    with context.expect_page() as opened:
        pay.click()
    checkout = opened.value
    expect(checkout.get_by_role("heading", name="Simulated checkout")).to_be_visible()
    expect(checkout.get_by_role("main")).not_to_contain_text(SET_UP_WORDS)  # it says no money moves, no more
    looks_right(checkout, f"{size}-simulated-payment")
    checkout.get_by_role("button", name="Pay (simulated)").click()
    # Back on the shop's thank-you page, read from the database: paid (or already handed to fulfilment).
    expect(checkout.get_by_role("heading", name=re.compile("^Thank you"))).to_be_visible(timeout=30_000)
    expect(checkout.get_by_text("no real payment was taken")).to_be_visible()
    looks_right(checkout, f"{size}-thank-you")
    favicon = checkout.request.get(f"{shop}/favicon.ico")
    assert favicon.ok and favicon.headers["content-type"].startswith("image/")
    checkout.get_by_role("link", name="Return to the shop").click()
    expect(checkout).to_have_url(shop + "/")
    checkout.close()

    ask(page, "where is my order?")
    wait_idle(page)
    expect(log).to_contain_text(re.compile("paid|being prepared", re.IGNORECASE))
    expect(log).not_to_contain_text(SET_UP_WORDS)
    shot(page, f"{size}-widget-order-paid")

    page.keyboard.press("Escape")
    launcher = page.get_by_role("button", name="Skin advisor")
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    context.close()


def test_the_pay_button_says_what_it_does_in_words_a_person_can_read(browser: object, shop: str) -> None:
    context = new_context(browser, "desktop")
    page = context.new_page()
    open_widget(page, shop)
    ask(page, "find a cleanser")
    log = page.get_by_role("log", name="Conversation")
    # Pressed as soon as they show, as a person would, even while the words are still coming.
    log.get_by_role("button", name=re.compile(r"^Add to cart\b")).first.click(timeout=30_000)
    cart = page.get_by_role("article", name="Your cart").last
    cart.get_by_role("button", name="Checkout").click(timeout=30_000)

    pay = page.get_by_role("link", name="Open the simulated checkout")
    playwright_api.expect(pay).to_be_visible(timeout=30_000)
    shot(page, "desktop-pay-button")
    assert contrast(pay) >= MIN_CONTRAST
    context.close()


def _focus_in(dialog: object) -> bool:
    return bool(dialog.evaluate("d => d.contains(d.getRootNode().activeElement)"))  # type: ignore[attr-defined]


def test_on_a_phone_the_open_chat_keeps_the_focus_and_gives_it_back_when_closed(
    browser: object, shop: str
) -> None:
    context = new_context(browser, "phone")
    page = context.new_page()
    expect = playwright_api.expect
    page.goto(shop)
    launcher = page.get_by_role("button", name="Skin advisor")
    launcher.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Shine skincare advisor")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None and box["width"] == 360 and box["x"] == 0  # it covers the screen
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(launcher).to_be_hidden()
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        assert _focus_in(dialog), f"{key} left the open chat"
    shot(page, "phone-focus-in-chat")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launcher).to_be_focused()
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
    return page.get_by_role("article", name="Your data")  # type: ignore[attr-defined]


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
    card = page.get_by_role("article", name="Your data")
    expect(card).to_contain_text("Signed in as Nora")
    card.get_by_role("button", name="Close my account…").click()
    expect(card).to_contain_text("sign out everywhere")
    card.get_by_role("button", name="Yes, close my account").click()
    expect(log).to_contain_text("Your account is closed", timeout=15_000)
    shot(page, "widget-account-closed")

    page.reload()
    open_widget(page, shop)
    page.get_by_role("button", name="Your data").click()
    expect(page.get_by_role("article", name="Your data")).to_contain_text("You are chatting as a guest")
    context.close()
