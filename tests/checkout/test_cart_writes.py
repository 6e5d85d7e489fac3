"""A cart change is one unit of work: on SQLite it runs on the writer thread, holding the write lock for a
moment, never across trips through the event loop (as an ORM session it did, and under the mixed load
benchmark add_to_cart took 4 s at the median while every other request's write waited behind it)."""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy import event

from tests.checkout.conftest import CLEANSER, SERUM, Shop


async def test_cart_changes_write_only_on_the_writer_thread(shop: Shop) -> None:
    db = shop.services.db
    assert db.threads is not None  # SQLite: the writer thread is there
    on_event_loop: list[str] = []
    on_writer_thread: list[str] = []

    def async_engine(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "PRAGMA")):
            on_event_loop.append(" ".join(statement.split()[:3]))

    def writer_thread(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        on_writer_thread.append(" ".join(statement.split()[:3]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", async_engine)
    event.listen(db.threads.engine, "before_cursor_execute", writer_thread)
    try:
        await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 2})
        await shop.call("add_to_cart", {"product_id": CLEANSER})
        await shop.call("update_cart_item", {"product_id": SERUM, "quantity": 1})
        cart = await shop.call("remove_from_cart", {"product_id": CLEANSER})
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", async_engine)
        event.remove(db.threads.engine, "before_cursor_execute", writer_thread)

    assert [(line["product_id"], line["quantity"]) for line in cart["lines"]] == [(SERUM, 1)]
    assert on_event_loop == []
    assert on_writer_thread.count("UPDATE carts SET") >= 4  # each change bumped the version there


async def test_concurrent_adds_by_one_shopper_all_count(shop: Shop) -> None:
    async def add_one() -> None:
        await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 1})

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(add_one)
    cart = await shop.call("view_cart")
    assert [(line["product_id"], line["quantity"]) for line in cart["lines"]] == [(SERUM, 8)]
