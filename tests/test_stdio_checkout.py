"""Checkout from a stdio client: the payment link `shine mcp` hands out works on its own, with no
`shine serve` running anywhere: the web shell runs beside the stdio server, on the same database."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from tests.test_transports import SHINE, shine_env

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path: Path, demo_database_template: Path) -> Path:
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    return tmp_path


async def test_a_stdio_checkout_link_opens_the_payment_page_and_paying_there_pays_the_order(
    data_dir: Path,
) -> None:
    params = StdioServerParameters(command=SHINE, args=["mcp"], env=shine_env(data_dir))
    with anyio.fail_after(90):
        async with Client(params) as client:
            found = await client.call_tool("search_products", {"query": "moisturiser"})
            assert found.structured_content and found.structured_content["products"]
            product_id = found.structured_content["products"][0]["id"]
            added = await client.call_tool("add_to_cart", {"product_id": product_id})
            assert not added.is_error, added.content
            checkout = await client.call_tool("checkout", {})
            assert not checkout.is_error and checkout.structured_content, checkout.content
            link, order_id = (
                checkout.structured_content["checkout_url"],
                checkout.structured_content["order"]["order_id"],
            )
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/simulated-checkout/\S+", link)
            assert not link.startswith("http://127.0.0.1:8000/")  # a port of its own, not `shine serve`'s

            async with httpx.AsyncClient(timeout=20) as http:
                page = await http.get(link)
                assert page.status_code == 200, page.text
                assert "SIMULATED CHECKOUT" in page.text and "Pay (simulated)" in page.text
                pay_action = re.search(r'action="(/simulated-checkout/[^"]+/pay)"', page.text)
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert pay_action and csrf
                paid = await http.post(
                    link.split("/simulated-checkout/")[0] + pay_action[1], data={"csrf": csrf[1]}
                )
                assert paid.status_code in (200, 303), paid.text

            order = await client.call_tool("get_order", {"order_id": order_id})
    assert (
        order.structured_content and order.structured_content["paid_at"]
    )  # then "fulfilling": being prepared


async def test_with_a_public_url_the_stdio_checkout_link_names_it(data_dir: Path) -> None:
    """An operator who runs `shine serve` on the same database says where with SHINE_PUBLIC_URL: the links
    name it, and `shine mcp` serves no pages of its own."""
    env = {**shine_env(data_dir), "SHINE_PUBLIC_URL": "https://shop.example"}
    params = StdioServerParameters(command=SHINE, args=["mcp"], env=env)
    with anyio.fail_after(90):
        async with Client(params) as client:
            found = await client.call_tool("search_products", {"query": "moisturiser"})
            assert found.structured_content
            product_id = found.structured_content["products"][0]["id"]
            assert not (await client.call_tool("add_to_cart", {"product_id": product_id})).is_error
            checkout = await client.call_tool("checkout", {})
    assert checkout.structured_content, checkout.content
    assert checkout.structured_content["checkout_url"].startswith("https://shop.example/simulated-checkout/")
