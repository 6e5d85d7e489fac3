"""Webhook throughput: `checkout.session.completed` events through the whole web shell (ASGI, no sockets):
signature verified by the stripe SDK, event id recorded, order locked and marked paid, stock taken, cart
freed and the fulfilment outbox row written, all committed before the 200. Four senders at once, as Stripe
delivers concurrently. Baseline: the bare signature verification (`stripe.WebhookSignature.verify_header`) of the
same events in the same run. Then refill subscriptions' renewals: `invoice.paid` events, each marking a
subscription paid up to the invoice's period and becoming one paid order with its outbox row (one write unit
per event), measured the same way (same target).

Run: `make bench` (or `.venv/bin/python benchmarks/bench_checkout.py [--events N] [--senders 4]`).
Target: at least 300 events per second on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import stripe
from sqlalchemy import update
from sqlmodel import col

from benchmarks.lean_http import LeanHttp
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.payments import sign_payload
from shine_mcp.services import Services
from shine_mcp.store.orders import FulfilmentJob, Order, OrderLine, insert_order
from shine_mcp.store.subscriptions import Subscription, insert_subscription
from shine_mcp.store.tables import Product, ProductVariant, default_variant_id
from web_shell.app import create_app

SECRET = "whsec_bench_" + secrets.token_hex(16)
PRODUCT = "prd_b559697ee63c"  # a demo catalog product
TARGET = 300.0


async def _orders(services: Services, count: int, *, stock: int = 0) -> list[tuple[str, str]]:
    # Enough stock for every order: a payment for stock already sold is held, never sent to fulfilment.
    async with services.db.session() as session:
        await session.execute(
            update(Product).where(col(Product.id) == PRODUCT).values(stock=col(Product.stock) + count + stock)
        )
        await session.execute(  # stock is taken from the product's variant
            update(ProductVariant)
            .where(col(ProductVariant.id) == default_variant_id(PRODUCT))
            .values(stock=col(ProductVariant.stock) + count + stock)
        )
        await session.commit()
    made = []
    for i in range(count):
        order_id, session_id = f"ord_{secrets.token_hex(10)}", f"cs_test_{secrets.token_hex(12)}"
        now = utcnow()
        order = Order(
            id=order_id,
            user_id=f"usr_bench_{i % 50}",
            cart_id=f"crt_{secrets.token_hex(10)}",
            cart_version=1,
            gateway="stripe",
            status="pending",
            currency="USD",
            total_minor=2200,
            success_url="http://127.0.0.1:8000/ok",
            cancel_url="http://127.0.0.1:8000/no",
            checkout_session_id=session_id,
            created_at=now,
            updated_at=now,
        )
        line = OrderLine(
            order_id=order_id,
            position=0,
            product_id=PRODUCT,
            brand="Naturium",
            name="Serum",
            unit_price_minor=2200,
            quantity=1,
        )
        assert await insert_order(services.db, order, [line])
        made.append((order_id, session_id))
    return made


async def _subscriptions(services: Services, count: int) -> list[tuple[str, str]]:
    """Active Stripe subscriptions (one serum every 4 weeks), as their first invoice left them: (Shine id,
    Stripe id). Each renewal in the benchmark is a different subscriber's, as on a shop's busy morning."""
    await _orders(services, 0, stock=count)
    made = []
    for i in range(count):
        sub_id, provider = f"sub_{secrets.token_hex(10)}", f"sub_{secrets.token_hex(12)}"
        await insert_subscription(
            services.db,
            Subscription(
                id=sub_id,
                user_id=f"usr_bench_{i % 50}",
                gateway="stripe",
                status="active",
                currency="USD",
                items=[
                    {
                        "product_id": PRODUCT,
                        "variant_id": default_variant_id(PRODUCT),
                        "brand": "Naturium",
                        "name": "Serum",
                        "quantity": 1,
                        "unit_price_minor": 2200,
                    }
                ],
                interval_weeks=4,
                email=f"subscriber{i}@example.com",
                shipping={  # told by the first checkout: renewals ship there
                    "name": "Bench Subscriber",
                    "address": {"line1": f"{i} Main St", "city": "Springfield", "country": "US"},
                },
                provider_subscription_id=provider,
                provider_customer_id="cus_" + secrets.token_hex(7),
                activated_at=utcnow(),
            ),
        )
        made.append((sub_id, provider))
    return made


def _invoice_event(sub_id: str, provider: str) -> tuple[bytes, str]:
    now = int(time.time())
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": now,
        "type": "invoice.paid",
        "livemode": False,
        "data": {
            "object": {
                "id": "in_" + secrets.token_hex(12),
                "object": "invoice",
                "status": "paid",
                "customer": "cus_bench",
                "currency": "usd",
                "amount_due": 2200,
                "amount_paid": 2200,
                "billing_reason": "subscription_cycle",
                "created": now,
                "status_transitions": {"paid_at": now},
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {
                        "subscription": provider,
                        "metadata": {"subscription_id": sub_id},
                    },
                },
                "lines": {
                    "object": "list",
                    "data": [
                        {
                            "id": "il_" + secrets.token_hex(8),
                            "object": "line_item",
                            "amount": 2200,
                            "quantity": 1,
                            "period": {"start": now, "end": now + 28 * 24 * 3600},
                        }
                    ],
                },
            }
        },
    }
    payload = json.dumps(event, separators=(",", ":")).encode()
    return payload, sign_payload(payload, SECRET)


async def run_invoices(count: int, senders: int) -> float:
    """`invoice.paid` through the web shell (ASGI, as `run`): events per second."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=None,
            stripe_secret_key="sk_test_bench",  # type: ignore[arg-type]
            stripe_webhook_secret=SECRET,  # type: ignore[arg-type]
            fulfilment_worker=False,
        )
        services = Services(settings)
        app = create_app(settings, services)
        async with app.router.lifespan_context(app):
            warm = await _subscriptions(services, 50)
            made = await _subscriptions(services, count)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as http:
                posts = [_asgi_post(http)] * senders
                await _send_all(posts, [_invoice_event(*s) for s in warm])
                full = await _send_all(posts, [_invoice_event(*s) for s in made])
            async with services.db.session() as session:
                from sqlalchemy import func, select

                jobs = (await session.execute(select(func.count()).select_from(FulfilmentJob))).scalar_one()
            assert jobs == count + len(warm), "every paid invoice must be one order with one outbox row"
    return count / full


def _event(order_id: str, session_id: str) -> tuple[bytes, str]:
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "type": "checkout.session.completed",
        "livemode": False,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "status": "complete",
                "payment_status": "paid",
                "amount_total": 2200,
                "currency": "usd",
                "client_reference_id": order_id,
                "metadata": {"order_id": order_id},
                "payment_intent": "pi_" + secrets.token_hex(12),
                "customer_details": {"email": "bench@example.com"},
            }
        },
    }
    payload = json.dumps(event, separators=(",", ":")).encode()
    return payload, sign_payload(payload, SECRET)


# Sends one signed event, returns the HTTP status and the answer's JSON.
Post = Callable[[bytes, str], Awaitable[tuple[int, Any]]]


def _asgi_post(http: httpx.AsyncClient) -> Post:
    async def post(payload: bytes, header: str) -> tuple[int, Any]:
        response = await http.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})
        return response.status_code, response.json()

    return post


def _lean_post(http: LeanHttp) -> Post:
    """One sender's own kept connection; the generator's CPU stays small (`lean_http`)."""

    async def post(payload: bytes, header: str) -> tuple[int, Any]:
        headers = {"content-type": "application/json", "stripe-signature": header}
        answer = await http.request("POST", "/stripe/webhook", payload, headers)
        return answer.status, answer.json()

    return post


async def _send_all(posts: list[Post], events: list[tuple[bytes, str]]) -> float:
    """Every event sent by len(posts) senders at once; each must be applied."""
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for item in events:
        queue.put_nowait(item)

    async def sender(post: Post) -> None:
        while not queue.empty():
            payload, header = queue.get_nowait()
            status, answer = await post(payload, header)
            assert status == 200 and answer["outcome"] == "applied", answer

    started = time.perf_counter()
    await asyncio.gather(*(sender(post) for post in posts))
    return time.perf_counter() - started


def _verify_all(events: list[tuple[bytes, str]]) -> float:
    started = time.perf_counter()
    for payload, header in events:
        stripe.WebhookSignature.verify_header(payload, header, SECRET, stripe.Webhook.DEFAULT_TOLERANCE)
    return time.perf_counter() - started


async def run(count: int, senders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=None,
            stripe_secret_key="sk_test_bench",  # type: ignore[arg-type]
            stripe_webhook_secret=SECRET,  # type: ignore[arg-type]
            fulfilment_worker=False,  # measure the webhook alone
        )
        services = Services(settings)
        app = create_app(settings, services)
        async with app.router.lifespan_context(app):
            warm = await _orders(services, 50)
            made = await _orders(services, count)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as http:
                posts = [_asgi_post(http)] * senders
                await _send_all(posts, [_event(*o) for o in warm])
                events = [_event(*o) for o in made]
                bare = min(_verify_all(events) for _ in range(3))
                full = await _send_all(posts, events)
            async with services.db.session() as session:
                from sqlalchemy import func, select

                jobs = (await session.execute(select(func.count()).select_from(FulfilmentJob))).scalar_one()
            assert jobs == count + len(warm), "every paid order must have exactly one outbox row"
    return {
        "events": count,
        "senders": senders,
        "webhook_events_per_s": count / full,
        "bare_verification_events_per_s": count / bare,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run_served(count: int, senders: int) -> float:
    """The same events over loopback TCP to `shine serve` in its own process (access log on, as deployed),
    so the senders' own CPU is not counted against the server, as with Stripe calling from outside."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None)
        services = Services(settings)
        async with services.running():
            warm = await _orders(services, 50)
            made = await _orders(services, count)
        port = _free_port()
        env = {
            **os.environ,
            "SHINE_DATA_DIR": tmp,
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "SHINE_FULFILMENT_WORKER": "false",
        }
        env.pop("DATABASE_URL", None)
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shine_cli.cli",
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            connections = [LeanHttp(base, timeout=30) for _ in range(senders)]
            posts = [_lean_post(connection) for connection in connections]
            try:
                await _send_all(posts, [_event(*o) for o in warm])
                full = await _send_all(posts, [_event(*o) for o in made])
            finally:
                for connection in connections:
                    await connection.close()
        finally:
            server.terminate()
            await server.wait()
        services = Services(settings)
        async with services.running(), services.db.session() as session:
            from sqlalchemy import func, select

            jobs = (await session.execute(select(func.count()).select_from(FulfilmentJob))).scalar_one()
        assert jobs == count + len(warm), "every paid order must have exactly one outbox row"
    return count / full


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # request logs would cost more than what is measured
    result = asyncio.run(run(args.events, args.senders))
    served = asyncio.run(run_served(args.events, args.senders))
    invoices = asyncio.run(run_invoices(args.events, args.senders))
    full, bare = result["webhook_events_per_s"], result["bare_verification_events_per_s"]
    print(f"bare signature verification (stripe SDK):            {bare:,.0f} events/s")
    print(
        f"webhook handling, senders in the same process (ASGI): {full:,.0f} events/s ({full / bare:.4f} of bare)"
    )
    print(
        f"webhook handling, {args.senders} senders over HTTP to `shine serve`: {served:,.0f} events/s "
        f"({served / bare:.4f} of bare)  ·  target ≥ {TARGET:.0f} events/s: {'met' if served >= TARGET else 'MISSED'}"
    )
    print(
        f"invoice.paid (subscription renewals), senders in the same process (ASGI): {invoices:,.0f} events/s"
        f"  ·  target ≥ {TARGET:.0f} events/s: {'met' if invoices >= TARGET else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
