"""Checkouts of one cart version racing to write its order: exactly one writes it, with its lines once, and
the others learn they lost without an error: on PostgreSQL each losing insert used to log a duplicate-key
ERROR with its whole statement (~1.5 KB), which filled the throwaway cluster's log pipe in issue 20."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.orders import Order, OrderLine, insert_order, new_id, order_for_cart, order_lines
from tests.conftest import make_settings

CHECKOUTS = 4


def _order(order_id: str, cart_id: str) -> Order:
    now = utcnow()
    return Order(
        id=order_id,
        user_id="usr_racer",
        cart_id=cart_id,
        cart_version=1,
        gateway="simulated",
        status="pending",
        currency="USD",
        total_minor=5000,
        success_url="http://127.0.0.1:8000/checkout/success",
        cancel_url="http://127.0.0.1:8000/checkout/cancel",
        created_at=now,
        updated_at=now,
    )


def _lines(order_id: str) -> list[OrderLine]:
    return [
        OrderLine(
            order_id=order_id,
            position=i,
            product_id=f"prd_{i}",
            variant_id=f"var_{i}",
            brand="Example",
            name=f"Serum {i}",
            unit_price_minor=2500,
            quantity=1,
        )
        for i in range(2)
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    settings: Settings = make_settings(tmp_path, load_demo_catalog=False)
    if request.param == "postgresql":
        settings = settings.model_copy(update={"database_url": request.getfixturevalue("postgres_url")})
    opened = await open_database(settings)
    yield opened
    await opened.close()


async def _server_log(db: Database) -> Path | None:
    """The throwaway cluster's log file (`tests/support/postgres.py`: beside its data directory)."""
    if db.dialect != "postgresql":
        return None
    async with db.engine.connect() as connection:
        data = (await connection.execute(text("SHOW data_directory"))).scalar_one()
    return Path(data).parent / "server.log"


@pytest.mark.parametrize("same", ["order id", "cart version"])
async def test_racing_checkouts_write_one_order_with_its_lines_once_and_log_no_error(
    db: Database, same: str
) -> None:
    log = await _server_log(db)
    logged_before = log.stat().st_size if log is not None else 0
    cart_id = f"crt_{uuid.uuid4().hex[:20]}"
    shared_id = new_id("ord")
    ids = [shared_id if same == "order id" else new_id("ord") for _ in range(CHECKOUTS)]

    won = await asyncio.gather(*(insert_order(db, _order(i, cart_id), _lines(i)) for i in ids))

    assert won.count(True) == 1
    winner = ids[won.index(True)]
    stored = await order_for_cart(db, cart_id, 1)
    assert stored is not None and stored.id == winner
    lines = await order_lines(db, list(set(ids)))
    assert [(line.order_id, line.position) for line in lines[winner]] == [(winner, 0), (winner, 1)]
    assert all(not lines.get(i) for i in ids if i != winner)  # a loser's lines were never written
    if log is not None:
        logged = log.read_bytes()[logged_before:].decode(errors="replace")
        assert "duplicate key" not in logged
