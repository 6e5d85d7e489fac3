"""`shine orders`: the merchant sees the local fulfilment queue, ships, retries, lists and reports."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from shine_cli.cli import app
from shine_mcp.config import Settings
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.fulfilment import FulfilmentWorker
from shine_mcp.orders.service import Commerce
from shine_mcp.store.db import open_database
from shine_mcp.store.orders import get_order
from tests.checkout.conftest import SERUM, in_own_task, open_shop


def paid_and_queued(settings: Settings) -> str:
    """Arrange: a shopper paid through the simulated checkout and the worker put it in the local queue."""

    async def arrange() -> str:
        async with in_own_task(open_shop(settings)) as shop:
            result = await shop.buy(SERUM, 2, user="usr_ana")
            commerce = Commerce(shop.services)
            gateway = commerce.gateway()
            assert isinstance(gateway, SimulatedGateway)
            await gateway.pay(result["checkout_url"].rsplit("/", 1)[1])
            await FulfilmentWorker(commerce.db, commerce.ledger, settings).run_once()
            return str(result["order"]["order_id"])

    return asyncio.run(arrange())


def shine(settings: Settings, *args: str) -> str:
    env = {
        "SHINE_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": None,
        "STRIPE_SECRET_KEY": None,
        "SHINE_SECRET_KEY": None,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["orders", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def status_of(settings: Settings, order_id: str) -> str:
    async def read() -> str:
        db = await open_database(settings)
        try:
            order = await get_order(db, order_id)
            assert order is not None
            return order.status
        finally:
            await db.close()

    return asyncio.run(read())


def test_the_local_queue_shows_what_to_ship_and_where(sim_settings: Settings) -> None:
    order_id = paid_and_queued(sim_settings)
    listing = shine(sim_settings, "pending-fulfilment")
    assert order_id in listing and "ship it yourself" in listing
    assert "2 × Naturium Retinaldehyde Cream Serum 0.10%" in listing
    assert "1 Simulation Street" in listing

    [request] = json.loads(shine(sim_settings, "pending-fulfilment", "--json"))
    assert request["order_id"] == order_id and request["fulfilment"] == "local"
    assert request["items"][0]["quantity"] == 2


def test_marking_an_order_shipped_takes_it_off_the_queue(sim_settings: Settings) -> None:
    order_id = paid_and_queued(sim_settings)
    shipped = shine(sim_settings, "mark-shipped", order_id, "--tracking", "1Z999", "--carrier", "UPS")
    assert "marked shipped" in shipped
    assert status_of(sim_settings, order_id) == "shipped"
    assert "Nothing waits for fulfilment" in shine(sim_settings, "pending-fulfilment")


def test_list_and_report_show_the_order(sim_settings: Settings) -> None:
    order_id = paid_and_queued(sim_settings)
    listing = shine(sim_settings, "list")
    assert order_id in listing and "fulfilling (simulated)" in listing and "$44.00" in listing
    report = shine(sim_settings, "report", "--include-simulated")
    assert "total" in report and "$44.00" in report
    assert "$44.00" not in shine(sim_settings, "report")  # real sales only by default


def test_an_unknown_order_cannot_be_marked_shipped(sim_settings: Settings) -> None:
    env = {"SHINE_DATA_DIR": str(sim_settings.data_dir), "DATABASE_URL": None, "STRIPE_SECRET_KEY": None}
    result = CliRunner().invoke(app, ["orders", "mark-shipped", "ord_nope", "--tracking", "1"], env=env)
    assert result.exit_code == 1 and "no order ord_nope" in result.output
