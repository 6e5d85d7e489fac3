"""Fixtures for checkout and orders: a whole Shine (the real ASGI app with its lifespan, plus an in-process
MCP client) on the demo catalog, with the simulated checkout or with the real stripe SDK pointed at the
Stripe fake; and the fulfilment partner fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mcp import Client
from sqlalchemy import func
from sqlmodel import SQLModel, select
from starlette.applications import Starlette

from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.orders import Order, get_order
from shine_mcp.store.tables import Product, ProductVariant, default_variant_id
from tests.conftest import make_settings
from tests.fakes import fulfilment_partner, stripe_api
from tests.fakes.fulfilment_partner import FakePartner
from tests.fakes.stripe_api import FakeStripe, signed
from tests.support.postgres import free_port
from web_shell.app import create_app

T = TypeVar("T")
BASE_URL = "http://127.0.0.1:8000"

# Demo catalog products (all USD).
SERUM = "prd_b559697ee63c"  # Naturium Retinaldehyde Cream Serum 0.10%, $22.00
CLEANSER = "prd_a10998b57b6e"  # CeraVe Hydrating Facial Cleanser, $17.99
FOAMING = "prd_0011d8a074e0"  # CeraVe Foaming Facial Cleanser, $16.99


class ToolFailed(Exception):
    pass


@dataclass
class Shop:
    settings: Settings
    services: Services
    client: Client
    http: httpx.AsyncClient
    app: Starlette

    async def call(
        self, tool: str, args: dict[str, Any] | None = None, *, user: str | None = None, admin: bool = False
    ) -> dict[str, Any]:
        """Call a tool as the local user (an admin), or as `user` through a signed identity (the web shell's way)."""
        meta = (
            identity_meta(user, self.settings, roles=("user", "admin") if admin else ("user",))
            if user
            else None
        )
        result = await self.client.call_tool(tool, args or {}, meta=meta)
        if result.is_error:
            raise ToolFailed(" ".join(getattr(c, "text", "") for c in result.content))
        assert result.structured_content is not None
        return result.structured_content

    async def refused(self, tool: str, args: dict[str, Any] | None = None, **kwargs: Any) -> str:
        with pytest.raises(ToolFailed) as failure:
            await self.call(tool, args, **kwargs)
        return str(failure.value)

    async def buy(
        self, product_id: str = SERUM, quantity: int = 1, *, user: str | None = None
    ) -> dict[str, Any]:
        await self.call("add_to_cart", {"product_id": product_id, "quantity": quantity}, user=user)
        return await self.call("checkout", user=user)

    async def webhook(self, event: dict[str, Any], **signing: Any) -> httpx.Response:
        payload, header = signed(event, **signing)
        return await self.http.post(
            "/stripe/webhook",
            content=payload,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )

    async def order(self, order_id: str) -> Order:
        found = await get_order(self.services.db, order_id)
        assert found is not None
        return found

    async def count(self, table: type[SQLModel], *where: Any) -> int:
        async with self.services.db.session() as session:
            query = select(func.count()).select_from(table)
            for condition in where:
                query = query.where(condition)
            return int((await session.execute(query)).scalar_one())

    async def stock(self, product_id: str) -> int:
        async with self.services.db.session() as session:
            product = await session.get(Product, product_id)
            assert product is not None
            return product.stock

    async def set_product(self, product_id: str, **values: Any) -> None:
        """Change a demo product (each has one variant): stock, price and currency are its variant's too."""
        async with self.services.db.session() as session:
            product = await session.get(Product, product_id)
            variant = await session.get(ProductVariant, default_variant_id(product_id))
            assert product is not None and variant is not None
            for name, value in values.items():
                setattr(product, name, value)
                if name in ("stock", "price_minor", "currency"):
                    setattr(variant, name, value)
            await session.commit()

    async def age_order(self, order_id: str, days: int) -> None:
        """Move an order's dates `days` into the past (arranging a return-window test)."""
        async with self.services.db.session() as session:
            order = await session.get(Order, order_id)
            assert order is not None
            for name in ("created_at", "paid_at", "shipped_at", "fulfilling_at"):
                if getattr(order, name) is not None:
                    value = getattr(order, name)
                    value = value if value.tzinfo else value.replace(tzinfo=UTC)
                    setattr(order, name, value - timedelta(days=days))
            await session.commit()


@asynccontextmanager
async def open_shop(settings: Settings) -> AsyncIterator[Shop]:
    services = Services(settings)
    app = create_app(settings, services)
    server = build_server(settings, services)
    async with app.router.lifespan_context(app), Client(server) as client:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield Shop(settings, services, client, http, app)


@asynccontextmanager
async def in_own_task(manager: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter and leave `manager` in one task of its own (anyio task groups inside the app's lifespan and
    the MCP client must exit where they entered; pytest-asyncio may finish a fixture in another task)."""
    box: list[T] = []
    failed: list[BaseException] = []
    ready, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        try:
            async with manager as value:
                box.append(value)
                ready.set()
                await done.wait()
        except BaseException as exc:
            failed.append(exc)
            ready.set()
            raise

    task = asyncio.create_task(hold())
    await ready.wait()
    if failed:
        await task
    try:
        yield box[0]
    finally:
        done.set()
        await task


def shop_settings(data_dir: Path, **overrides: Any) -> Settings:
    # The worker is run by hand in these tests so states can be asserted between steps. The local user runs
    # the shop: opted into the merchant and admin tools (refunds, sales report), as `shine mcp --toolsets`.
    values: dict[str, Any] = {"fulfilment_worker": False, "toolsets": ["shopper", "merchant", "admin"]}
    return make_settings(data_dir, **{**values, **overrides})


@pytest.fixture
def sim_settings(settings: Settings) -> Settings:
    return shop_settings(settings.data_dir)


@pytest.fixture
async def shop(sim_settings: Settings) -> AsyncIterator[Shop]:
    async with in_own_task(open_shop(sim_settings)) as opened:
        yield opened


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with stripe_api.running(FakeStripe(), free_port()) as fake:
        yield fake


@pytest.fixture
def stripe_settings(settings: Settings, fake_stripe: FakeStripe) -> Settings:
    return shop_settings(
        settings.data_dir,
        stripe_secret_key=stripe_api.API_KEY,
        stripe_webhook_secret=stripe_api.WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
    )


@pytest.fixture
async def stripe_shop(stripe_settings: Settings) -> AsyncIterator[Shop]:
    async with in_own_task(open_shop(stripe_settings)) as opened:
        yield opened


@pytest.fixture
def partners() -> Iterator[Callable[..., FakePartner]]:
    """Start fulfilment partner fakes: `partners(secret=..., script=[...])`."""
    started: list[Any] = []

    def start(**kwargs: Any) -> FakePartner:
        context = fulfilment_partner.running(FakePartner(**kwargs), free_port())
        started.append(context)
        return context.__enter__()

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


class Clock:
    """The worker's and ledger's time; tests move it instead of waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()
