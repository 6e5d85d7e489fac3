"""In Chromium: a product with several shades offers a choice on its card (a product opened, or a search
result), the shade picked is the one that lands in the cart (and the cart card names it), and a cart line's
"−" takes one of it away."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest

from shine_mcp.store.catalog import upsert_products
from shine_mcp.store.db import open_database
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.records import product_id_for
from tests.advisor.web import shine_web
from tests.conftest import make_settings
from tests.e2e.browser import new_context, playwright_api
from tests.e2e.test_widget import ask, looks_right, open_widget, wait_idle

pytestmark = pytest.mark.slow
TEMPLATE = Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv"
PRODUCT = product_id_for("example-tinted-moisturiser")


def import_template(data_dir: Path) -> None:
    async def load() -> None:
        db = await open_database(make_settings(data_dir))
        try:
            parsed = read_catalog(TEMPLATE, default_currency="USD")
            await upsert_products(db, parsed.records, source="import:shopify_template.csv")
        finally:
            await db.close()

    # Playwright's sync API keeps an event loop running in this thread: the import runs in its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, load).result(timeout=60)


def test_picking_a_shade_on_a_product_card_adds_that_shade(browser: object, tmp_path: Path) -> None:
    import_template(tmp_path)
    with shine_web(tmp_path) as (url, _):
        context = new_context(browser, "desktop")
        page = context.new_page()
        dialog = open_widget(page, url)
        ask(page, f"tell me about {PRODUCT}")
        wait_idle(page)
        shade = dialog.get_by_role("combobox", name="Size or shade of Example Tinted Moisturiser")  # type: ignore[attr-defined]
        options = shade.locator("option").all_inner_texts()
        picked = options[1]
        shade.select_option(label=picked)
        dialog.get_by_role("button", name="Add to cart").last.click()  # type: ignore[attr-defined]
        wait_idle(page)
        cart = dialog.get_by_role("article", name="Your cart").last  # type: ignore[attr-defined]
        title = picked.split(" — ")[0]
        playwright_api.expect(cart).to_contain_text(title)
        assert options[0].split(" — ")[0] not in cart.inner_text()
        context.close()


def test_a_search_result_card_offers_the_shades_and_the_cart_line_takes_one_away(
    browser: object, tmp_path: Path
) -> None:
    import_template(tmp_path)
    with shine_web(tmp_path) as (url, _):
        context = new_context(browser, "desktop")
        page = context.new_page()
        expect = playwright_api.expect
        dialog = open_widget(page, url)
        ask(page, "find me a tinted moisturiser")
        wait_idle(page)
        results = dialog.get_by_role("list", name="Suggested products").last  # type: ignore[attr-defined]
        card = results.get_by_role("listitem", name="Example Tinted Moisturiser")
        shade = card.get_by_role("combobox", name="Size or shade of Example Tinted Moisturiser")
        picked = shade.locator("option").all_inner_texts()[2]
        shade.select_option(label=picked)
        card.get_by_role("button", name="Add to cart").click()
        wait_idle(page)
        title = picked.split(" — ")[0]
        cart = dialog.get_by_role("article", name="Your cart").last  # type: ignore[attr-defined]
        expect(cart).to_contain_text(f"1 × Example Skin Co Example Tinted Moisturiser – {title}")
        looks_right(page, "desktop-search-shade-in-cart")

        cart.get_by_role("button", name="+ one more").click()
        wait_idle(page)
        cart = dialog.get_by_role("article", name="Your cart").last  # type: ignore[attr-defined]
        expect(cart).to_contain_text(f"2 × Example Skin Co Example Tinted Moisturiser – {title}")
        minus = cart.get_by_role("button", name="− one less")
        assert minus.evaluate("b => b.firstChild.textContent") == "−"  # what a person sees on it
        minus.click()
        wait_idle(page)
        cart = dialog.get_by_role("article", name="Your cart").last  # type: ignore[attr-defined]
        expect(cart).to_contain_text(f"1 × Example Skin Co Example Tinted Moisturiser – {title}")
        cart.get_by_role("button", name="− one less").click()
        wait_idle(page)
        cart = dialog.get_by_role("article", name="Your cart").last  # type: ignore[attr-defined]
        expect(cart).to_contain_text("Your cart is empty.")
        context.close()
