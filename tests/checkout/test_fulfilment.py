"""The fulfilment worker against partner fakes: signed deliveries, back-off on a moved clock, fallback on
rejection, timeouts, leases, the partner's shipment callback, and the loop waking when an order is paid."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import pytest
from pydantic import SecretStr
from sqlmodel import select

from shine_mcp.config import Settings
from shine_mcp.integrations.fulfilment import PartnerClient
from shine_mcp.integrations.payments import SimulatedGateway
from shine_mcp.orders.fulfilment import FulfilmentWorker
from shine_mcp.orders.service import Commerce
from shine_mcp.store.orders import FulfilmentJob
from tests.checkout.conftest import SERUM, Clock, Shop, in_own_task, open_shop
from tests.fakes.fulfilment_partner import FakePartner

SECRET = "fulfilment-shared-secret-for-tests"


@dataclass
class Setup:
    shop: Shop
    commerce: Commerce
    clock: Clock

    def worker(self, **options: Any) -> FulfilmentWorker:
        options.setdefault("client", PartnerClient(timeout=options.pop("timeout", 5.0)))
        return FulfilmentWorker(
            self.commerce.db, self.commerce.ledger, self.shop.settings, clock=self.clock, **options
        )

    async def paid_order(self, quantity: int = 1) -> str:
        result = await self.shop.buy(SERUM, quantity)
        gateway = self.commerce.gateway()
        assert isinstance(gateway, SimulatedGateway)
        await gateway.pay(result["checkout_url"].rsplit("/", 1)[1])
        return str(result["order"]["order_id"])

    async def job(self) -> FulfilmentJob:
        async with self.shop.services.db.session() as session:
            return (await session.execute(select(FulfilmentJob))).scalar_one()


@pytest.fixture
def connect(sim_settings: Settings, clock: Clock) -> Callable[..., AbstractAsyncContextManager[Setup]]:
    """`async with connect(primary, fallback) as setup:` a shop whose partners are these fakes."""

    @asynccontextmanager
    async def opened(
        primary: FakePartner | None, fallback: FakePartner | None = None
    ) -> AsyncIterator[Setup]:
        config = sim_settings.model_copy(
            update={
                "fulfilment_url": primary.orders_url if primary else None,
                "fulfilment_secret": SecretStr(SECRET),
                "fulfilment_fallback_url": fallback.orders_url if fallback else None,
            }
        )
        async with in_own_task(open_shop(config)) as shop:
            yield Setup(shop, Commerce(shop.services, clock=clock), clock)

    return opened


async def test_a_paid_order_is_delivered_once_signed_and_with_its_key(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET)
    async with connect(partner) as setup:
        order_id = await setup.paid_order(2)
        worker = setup.worker()
        assert await worker.run_once() == 1
        assert await worker.run_once() == 0

        [received] = partner.received
        job = await setup.job()
        assert received["order_id"] == order_id and received["items"][0]["quantity"] == 2
        assert received["callback_url"] == "http://127.0.0.1:8000/fulfilment/callback"
        assert partner.attempts == [job.id] and partner.bad_signatures == 0
        assert (job.status, job.partner) == ("delivered", "primary") and job.partner_reference
        assert (await setup.shop.order(order_id)).status == "fulfilling"


async def test_a_partner_that_succeeds_on_the_third_try_gets_the_order_once(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET, script=["error", "error", "accept"])
    async with connect(partner) as setup:
        await setup.paid_order()
        worker = setup.worker()
        await worker.run_once()
        job = await setup.job()
        assert (job.status, job.attempts) == ("pending", 1)
        assert "503" in (job.last_error or "")

        assert await worker.run_once() == 0  # not due yet: back-off, not a busy loop
        setup.clock.advance(seconds=30)
        await worker.run_once()
        assert (await setup.job()).attempts == 2
        setup.clock.advance(seconds=59)
        assert await worker.run_once() == 0  # the second wait is twice as long
        setup.clock.advance(seconds=1)
        await worker.run_once()

        job = await setup.job()
        assert job.status == "delivered"
        assert len(partner.received) == 1 and set(partner.attempts) == {job.id} and len(partner.attempts) == 3


async def test_a_partner_that_times_out_is_tried_again(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET, script=["hang", "accept"])
    async with connect(partner) as setup:
        await setup.paid_order()
        worker = setup.worker(timeout=0.3)
        await worker.run_once()
        job = await setup.job()
        assert job.status == "pending" and "timed out" in (job.last_error or "")
        setup.clock.advance(seconds=30)
        await worker.run_once()
        assert (await setup.job()).status == "delivered"


async def test_a_rejected_order_goes_to_the_fallback_partner(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    primary = partners(secret=SECRET, script=["reject"], name="primary")
    fallback = partners(secret=SECRET, name="fallback")
    async with connect(primary, fallback) as setup:
        order_id = await setup.paid_order()
        worker = setup.worker()
        await worker.run_once()
        job = await setup.job()
        assert (job.status, job.partner_index) == ("pending", 1)
        assert "we do not ship these products" in (job.last_error or "")
        await worker.run_once()  # due at once: no back-off before trying someone else

        job = await setup.job()
        assert (job.status, job.partner) == ("delivered", "fallback")
        assert primary.received == [] and [o["order_id"] for o in fallback.received] == [order_id]


async def test_a_partner_still_down_after_the_last_retry_hands_over_to_the_fallback(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    primary = partners(secret=SECRET, then="error")
    fallback = partners(secret=SECRET)
    async with connect(primary, fallback) as setup:
        await setup.paid_order()
        worker = setup.worker(max_attempts=3)
        for _ in range(3):
            await worker.run_once()
            setup.clock.advance(hours=1)
        await worker.run_once()
        assert len(primary.attempts) == 3 and len(fallback.received) == 1
        assert (await setup.job()).partner == "fallback"


async def test_when_every_partner_refuses_the_merchant_is_told(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    primary = partners(secret=SECRET, then="reject")
    fallback = partners(secret=SECRET, then="reject")
    async with connect(primary, fallback) as setup:
        order_id = await setup.paid_order()
        worker = setup.worker()
        await worker.run_once()
        await worker.run_once()
        job = await setup.job()
        assert job.status == "failed"
        order = await setup.shop.order(order_id)
        assert order.status == "paid"
        assert order.attention is not None and "fulfilment failed" in order.attention


async def test_the_back_off_doubles_and_is_capped(connect: Callable[..., Any]) -> None:
    async with connect(None) as setup:
        worker = setup.worker(base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=1))
        assert [worker.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


async def test_two_workers_never_deliver_one_order_twice(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET)
    async with connect(partner) as setup:
        await setup.paid_order()
        handled = await asyncio.gather(setup.worker().run_once(), setup.worker().run_once())
        assert sorted(handled) == [0, 1]
        assert len(partner.attempts) == 1


async def test_a_refunded_order_is_not_sent_to_the_partner(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET)
    async with connect(partner) as setup:
        order_id = await setup.paid_order()
        await setup.shop.call("refund_order", {"order_id": order_id})
        await setup.worker().run_once()
        assert partner.attempts == [] and (await setup.job()).status == "cancelled"


async def test_the_partner_s_shipment_callback_ships_the_order_once(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET)
    async with connect(partner) as setup:
        order_id = await setup.paid_order()
        await setup.worker().run_once()
        body, headers = partner.callback(order_id, "1Z999AA10123456784", event_id="shp_1")

        first = await setup.shop.http.post("/fulfilment/callback", content=body, headers=headers)
        second = await setup.shop.http.post("/fulfilment/callback", content=body, headers=headers)
        assert first.json() == {"received": True, "duplicate": False, "status": "shipped"}
        assert second.json() == {"received": True, "duplicate": True}
        order = await setup.shop.call("get_order", {"order_id": order_id})
        assert order["status"] == "shipped"
        assert (order["tracking_number"], order["carrier"]) == ("1Z999AA10123456784", "UPS")

        forged = dict(headers, **{"Shine-Signature": "t=1,v1=00"})
        assert (
            await setup.shop.http.post("/fulfilment/callback", content=body, headers=forged)
        ).status_code == 401


async def test_the_worker_loop_delivers_as_soon_as_an_order_is_paid(
    partners: Callable[..., FakePartner], connect: Callable[..., Any]
) -> None:
    partner = partners(secret=SECRET)
    forever = anyio.Event()

    async def never(_seconds: float) -> None:  # the poll timer never fires: only a wake-up can help
        await forever.wait()

    async with connect(partner) as setup:
        worker = setup.worker(sleep=never)
        setup.commerce.on_paid(worker.wake)
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run)
            with anyio.fail_after(10):
                await worker.pass_after(0)  # the first pass found nothing
                seen = worker.passes
                await setup.paid_order()
                await worker.pass_after(seen)
            group.cancel_scope.cancel()
        assert len(partner.received) == 1
