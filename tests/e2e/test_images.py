"""Product pictures in a real browser: on the demo shop page every product shows its picture, nothing moves
when the pictures arrive (each tile's box is the same with the pictures held back as with them loaded, and
Chromium reports no layout shift), and no picture weighs more than 60 KB over the wire; in the widget, a
product card shows its picture in a box of fixed size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.advisor.web import shine_web
from tests.e2e.browser import new_context, playwright_api, shot
from tests.e2e.test_widget import ask, open_widget, wait_idle

pytestmark = pytest.mark.slow
LARGEST_IMAGE_BYTES = 60 * 1024

_TILES_JS = """() => [...document.querySelectorAll("li.tile")].map((tile) => {
  const box = tile.getBoundingClientRect(), img = tile.querySelector("img");
  return { box: [box.x, box.y, box.width, box.height], loaded: !!img && img.complete && img.naturalWidth > 0 };
})"""
_SHIFT_JS = """() => new Promise((done) => {
  let total = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  requestAnimationFrame(() => requestAnimationFrame(() => done(total)));
})"""
_IMAGE_BYTES_JS = """() => performance.getEntriesByType("resource")
  .filter((entry) => entry.initiatorType === "img")
  .map((entry) => ({ url: entry.name, bytes: Math.max(entry.transferSize, entry.encodedBodySize) }))"""


@pytest.fixture
def shop(settings: object, tmp_path: Path) -> Iterator[str]:
    with shine_web(tmp_path) as (url, _):
        yield url


def tiles(page: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(_TILES_JS)
    return found


def all_pictures_loaded(page: Any) -> None:
    page.mouse.wheel(0, 5000)  # lazy pictures below the fold load once scrolled to
    page.wait_for_function(
        "() => [...document.querySelectorAll('li.tile img')].every((i) => i.complete && i.naturalWidth > 0)",
        timeout=15_000,
    )
    page.evaluate("() => window.scrollTo(0, 0)")


def test_shop_page_pictures_arrive_without_moving_anything(browser: object, shop: str) -> None:
    context = new_context(browser, "desktop")
    try:
        held = context.new_page()
        held.route("**/images/products/**", lambda route: route.abort())
        held.goto(shop)
        before = tiles(held)

        page = context.new_page()
        page.goto(shop)
        all_pictures_loaded(page)
        after = tiles(page)
        shift: float = page.evaluate(_SHIFT_JS)
        images: list[dict[str, Any]] = page.evaluate(_IMAGE_BYTES_JS)
        shot(page, "shop-images-desktop")
    finally:
        context.close()

    assert len(after) >= 8 and all(tile["loaded"] for tile in after)
    assert [t["box"] for t in before] == [t["box"] for t in after]
    assert shift == 0
    assert len(images) >= len(after)
    largest = max(images, key=lambda image: image["bytes"])
    assert 0 < largest["bytes"] < LARGEST_IMAGE_BYTES, largest


def test_widget_product_cards_show_their_picture_in_a_fixed_box(browser: object, shop: str) -> None:
    context = new_context(browser, "phone")
    try:
        page = context.new_page()
        dialog: Any = open_widget(page, shop)
        ask(page, "show me a serum")
        wait_idle(page)
        pictures = dialog.locator("li.card img")
        playwright_api.expect(pictures.first).to_be_visible()
        page.wait_for_function(
            """() => [...document.querySelector("#shine-advisor").shadowRoot.querySelectorAll("li.card img")]
                .every((i) => i.complete && i.naturalWidth > 0)""",
            timeout=15_000,
        )
        boxes = [pictures.nth(i).bounding_box() for i in range(pictures.count())]
        shot(page, "widget-card-images-phone")
    finally:
        context.close()

    assert boxes
    assert all(box is not None and round(box["height"]) == 110 for box in boxes), boxes
