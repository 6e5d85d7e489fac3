"""Refills in the widget, in Chromium: a signed-in shopper builds a routine, subscribes to all of it after
the advisor says what would start, pays the first delivery on the simulated page, and manages the refills
from their card (skip next delivery; cancel, which asks first). Controls are found by role and the words
they show; the card's text must be readable (contrast ≥ 4.5:1) and axe-core must find nothing serious."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.advisor.web import shine_web
from tests.e2e.browser import axe_violations, new_context, playwright_api, serious, shot, unreadable_controls
from tests.e2e.test_widget import ask, open_widget, wait_idle

pytestmark = pytest.mark.slow


@pytest.fixture
def shop(settings: object, tmp_path: Path) -> Iterator[str]:
    with shine_web(tmp_path, subscription_discount_percent=10) as (url, _):
        yield url


def signed_in(page: object, shop: str) -> object:
    """A shopper signs in from the widget (the loopback dev sign-in) and opens the chat again."""
    open_widget(page, shop)
    page.get_by_role("button", name="Your data").click()  # type: ignore[attr-defined]
    page.get_by_role("article", name="Your data").get_by_role("link", name="Sign in").click()  # type: ignore[attr-defined]
    page.get_by_label("Email").fill("rita@example.com")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url(shop + "/")  # type: ignore[attr-defined]
    return open_widget(page, shop)


def refills_card(dialog: object) -> object:
    """The refill card of the latest answer."""
    return dialog.get_by_role("article", name=re.compile(r"^Refills: ")).last  # type: ignore[attr-defined]


def readable(page: object, name: str) -> None:
    shot(page, name)
    assert unreadable_controls(page) == [], name
    assert serious(axe_violations(page)) == [], name


def test_a_shopper_subscribes_to_a_routine_then_skips_and_cancels_from_the_card(
    browser: object, shop: str
) -> None:
    context = new_context(browser, "desktop")
    page = context.new_page()
    expect = playwright_api.expect
    dialog = signed_in(page, shop)
    log = page.get_by_role("log", name="Conversation")

    ask(page, "build me a routine for dry skin")
    wait_idle(page)
    expect(log).to_contain_text("subscribe to the routine")
    ask(page, "subscribe to the whole routine")
    wait_idle(page)
    expect(log).to_contain_text("This starts one refill subscription for the routine")
    expect(log).to_contain_text("Reply “yes”")
    ask(page, "yes")
    wait_idle(page)

    card = refills_card(dialog)
    expect(card).to_contain_text("Waiting for the first payment")
    expect(card).to_contain_text(re.compile(r"Every \d+ weeks"))
    with context.expect_page() as opened:
        card.get_by_role("link", name=re.compile(r"^Pay the first delivery")).click()
    checkout = opened.value
    checkout.get_by_role("button", name="Pay (simulated)").click()
    checkout.wait_for_load_state()
    checkout.close()

    ask(page, "show my refills")
    wait_idle(page)
    card = refills_card(dialog)
    expect(card).to_contain_text("Active")
    expect(card).to_contain_text("Next delivery")
    expect(card).to_contain_text("you save 10 %")
    expect(card).not_to_contain_text("Stripe")  # how the shop is set up is not the shopper's business
    first_date = card.locator(".row", has_text="Next delivery").inner_text()
    for words in ("Skip next delivery", "Pause", "Cancel"):
        expect(card.get_by_role("button", name=re.compile("^" + words + " — refills of"))).to_be_visible()
    readable(page, "desktop-refills-card")

    card.get_by_role("button", name=re.compile(r"^Skip next delivery")).click()
    wait_idle(page)
    expect(log).to_contain_text("Skipped: the next delivery is now")
    skipped = refills_card(dialog)
    assert skipped.locator(".row", has_text="Next delivery").inner_text() != first_date

    skipped.get_by_role("button", name=re.compile(r"^Cancel")).click()
    wait_idle(page)
    expect(log).to_contain_text("This cancels your refill subscription")  # nothing cancelled before a yes
    expect(log).to_contain_text("Reply “yes”")
    ask(page, "yes")
    wait_idle(page)
    expect(log).to_contain_text("Cancelled: the delivery already paid for still comes")
    ended = refills_card(dialog)
    expect(ended).to_contain_text("Ends")
    expect(ended.get_by_role("button", name=re.compile(r"^Cancel"))).to_have_count(0)
    readable(page, "desktop-refills-cancelled")
    context.close()
