"""What the mixed load benchmark (`bench_load.py`) needs besides the chat shopper of `bench_load_sqlite.py`:
`shine serve --workers N` on SQLite or PostgreSQL, a store prepared with paid-for-nothing orders for the
webhook senders, the CPU the processes took (from `/proc`, no psutil), and reading the database back.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import bindparam, text, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from shine_mcp.auth import tokens
from shine_mcp.auth.accounts import upsert_user
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.integrations.payments import sign_payload
from shine_mcp.orders.service import simulated_webhook_secret
from shine_mcp.services import Services
from shine_mcp.store.db import Database
from shine_mcp.store.orders import Order, OrderLine, insert_order
from shine_mcp.store.tables import Product, ProductVariant, default_variant_id

SHINE = str(Path(sys.executable).parent / "shine")
SECRET_KEY = (
    "shine-load-benchmark-" + "k" * 32
)  # one key for every worker: cookies and webhooks verify anywhere
WEBHOOK_PRODUCT = "prd_b559697ee63c"  # a demo catalog product the webhook orders buy
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def settings_for(data_dir: Path, database_url: str | None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=SECRET_KEY,  # type: ignore[arg-type]
        fulfilment_worker=False,
    )


def server_env(
    data_dir: Path, port: int, database_url: str | None, *, mcp_auth: bool = False
) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHINE_", "DATABASE_URL", "ANTHROPIC_", "STRIPE_", "OTEL_"))
    }
    env = {
        **keep,
        "SHINE_DATA_DIR": str(data_dir),
        "SHINE_SECRET_KEY": SECRET_KEY,
        # Limits stay on (each request writes its counter) but one loopback IP must not be refused.
        "SHINE_RATE_LIMIT_IP": "10000000",
        "SHINE_RATE_LIMIT_USER": "10000000",
        "SHINE_FULFILMENT_WORKER": "false",  # no fulfilment partner to call: webhooks write the outbox only
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    if mcp_auth:  # as deployed beyond loopback: every MCP client signs in, and shops as itself
        env["SHINE_MCP_AUTH"] = "required"
    return env


def cpu_seconds(pid: int | str = "self", *, reaped: bool = False) -> float:
    """User + system CPU of one process (fields 14 and 15 of /proc/PID/stat), in seconds; with `reaped`,
    plus that of its children that ended and were waited for (fields 16 and 17)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])
    if reaped:
        used += int(fields[13]) + int(fields[14])
    return used / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the uvicorn supervisor and its workers)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with suppress(FileNotFoundError, ProcessLookupError):  # a process that just ended
                queue.extend(int(child) for child in task.read_text().split())
    return found


def tree_cpu_seconds(pid: int) -> float:
    """The CPU of `pid` and its descendants, those that already ended included: a PostgreSQL backend of a
    connection the pool closed takes its CPU with it unless its parent's count of reaped children is read."""
    total = 0.0
    for member in process_tree(pid):
        with suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_seconds(member, reaped=True)
    return total


def postmaster_pid(database_url: str) -> int | None:
    """The PostgreSQL server listening on the URL's port, if it runs on this machine (its backends are its
    children): the database's CPU is part of what a configuration costs."""
    port = database_url.rsplit(":", 1)[1].split("/", 1)[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if args and args[0].endswith(b"/postgres") and b"-p" in args and port.encode() in args:
                return int(cmdline.parent.name)
    return None


def _is_worker(pid: int) -> bool:
    """A worker the supervisor spawned, not multiprocessing's resource tracker beside them."""
    try:
        return b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@dataclass
class Served:
    base: str
    log_path: Path
    pid: int

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid)

    def worker_cpu(self) -> dict[int, float]:
        """Each worker's own CPU so far (the supervisor's children; the process itself with one worker)."""
        workers = [p for p in process_tree(self.pid) if p != self.pid and _is_worker(p)] or [self.pid]
        found: dict[int, float] = {}
        for pid in workers:
            with suppress(FileNotFoundError, ProcessLookupError):
                found[pid] = cpu_seconds(pid)
        return found


@contextmanager
def shine_serve(
    data_dir: Path,
    *,
    workers: int = 1,
    database_url: str | None = None,
    shine: str = SHINE,
    mcp_auth: bool = False,
) -> Iterator[Served]:
    """`shine serve --workers N` on a free loopback port, healthy on every worker before it yields."""
    from benchmarks.bench_load_sqlite import _free_port

    port = _free_port()
    log_path = data_dir / f"serve-{workers}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [shine, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=server_env(data_dir, port, database_url, mcp_auth=mcp_auth),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"shine serve exited: {log_path.read_text()[-2000:]}")
                started = log_path.read_text(errors="replace").count("Application startup complete")
                if started >= workers:
                    try:
                        if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"shine serve did not start {workers} workers within 180 s")
                time.sleep(0.2)
            yield Served(base, log_path, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def access_token(db: Database, email: str, resource: str) -> str:
    """An OAuth access token for the account of `email` (made if new), for the MCP endpoint `resource`, with
    the shopper's scopes: what an MCP client holds after signing in."""
    user = await upsert_user(db, VerifiedPerson(email, True), now=utcnow())
    issued = await tokens.issue(
        db,
        family_id=f"fam_{secrets.token_hex(8)}",
        client_id="shine-bench",
        user_id=user.id,
        scopes=["shine:read", "shine:shop"],
        resource=resource,
        with_refresh=False,
        now=utcnow(),
    )
    assert issued is not None
    return issued.access_token


async def shopper_tokens(settings: Settings, base: str, count: int) -> list[str]:
    """An access token for each of `count` shoppers, each its own account (and so its own cart), for the
    MCP endpoint at `base` as `shine serve` names it."""
    services = Services(settings)
    async with services.running():
        return [
            await access_token(services.db, f"load-shopper-{number}@example.com", f"{base}/mcp")
            for number in range(count)
        ]


async def prepare_store(settings: Settings, webhook_orders: int) -> list[tuple[str, str]]:
    """Migrate, load the demo catalog, and insert `webhook_orders` pending orders (with stock for each)
    that the webhook senders then mark paid. Returns (order id, checkout session id) pairs."""
    services = Services(settings)
    made: list[tuple[str, str]] = []
    async with services.running():
        async with services.db.session() as session:
            await session.execute(
                update(Product)
                .where(col(Product.id) == WEBHOOK_PRODUCT)
                .values(stock=col(Product.stock) + webhook_orders)
            )
            await session.execute(
                update(ProductVariant)
                .where(col(ProductVariant.id) == default_variant_id(WEBHOOK_PRODUCT))
                .values(stock=col(ProductVariant.stock) + webhook_orders)
            )
            await session.commit()
        for i in range(webhook_orders):
            order_id, session_id = f"ord_{secrets.token_hex(10)}", f"cs_sim_{secrets.token_hex(12)}"
            now = utcnow()
            order = Order(
                id=order_id,
                user_id=f"usr_load_{i % 50}",
                cart_id=f"crt_{secrets.token_hex(10)}",
                cart_version=1,
                gateway="simulated",
                status="pending",
                currency="USD",
                total_minor=2200,
                success_url=f"{settings.base_url}/ok",
                cancel_url=f"{settings.base_url}/no",
                checkout_session_id=session_id,
                created_at=now,
                updated_at=now,
            )
            line = OrderLine(
                order_id=order_id,
                position=0,
                product_id=WEBHOOK_PRODUCT,
                brand="Naturium",
                name="Serum",
                unit_price_minor=2200,
                quantity=1,
            )
            if not await insert_order(services.db, order, [line]):
                raise RuntimeError(f"could not insert order {order_id}")
            made.append((order_id, session_id))
    return made


def completed_event(settings: Settings, order_id: str, session_id: str) -> tuple[str, bytes, str]:
    """A `checkout.session.completed` event for one order, signed as the simulated gateway signs its own
    (the same scheme and header as Stripe's): (event id, body, `Stripe-Signature`)."""
    event_id = "evt_load_" + secrets.token_hex(12)
    event = {
        "id": event_id,
        "object": "event",
        "created": int(time.time()),
        "type": "checkout.session.completed",
        "livemode": False,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "complete",
                "payment_status": "paid",
                "amount_total": 2200,
                "currency": "usd",
                "client_reference_id": order_id,
                "metadata": {"order_id": order_id},
                "payment_intent": "pi_sim_" + secrets.token_hex(12),
                "customer_details": {"email": "load@example.com"},
            }
        },
    }
    payload = json.dumps(event, separators=(",", ":")).encode()
    return event_id, payload, sign_payload(payload, simulated_webhook_secret(settings))


@dataclass
class Stored:
    turns: int  # saves of chat sessions (each session's `version`)
    chats: int
    orders: int  # of the order ids checkout acknowledged, how many the database holds
    events: int  # of the webhook event ids acknowledged as applied, how many were recorded
    paid_orders: int  # of the webhook orders, how many are paid


async def read_back(
    url: str, order_ids: set[str], event_ids: set[str], webhook_order_ids: set[str]
) -> Stored:
    engine = create_async_engine(url)

    async def count_in(connection: object, sql: str, values: set[str]) -> int:
        if not values:
            return 0
        statement = text(sql).bindparams(bindparam("ids", expanding=True))
        total = 0
        ordered = sorted(values)
        for start in range(0, len(ordered), 500):
            result = await connection.execute(statement, {"ids": ordered[start : start + 500]})  # type: ignore[attr-defined]
            total += int(result.scalar_one())
        return total

    try:
        async with engine.connect() as connection:
            turns, chats = (
                await connection.execute(
                    text("SELECT COALESCE(SUM(version), 0), COUNT(*) FROM chat_sessions")
                )
            ).one()
            orders = await count_in(connection, "SELECT COUNT(*) FROM orders WHERE id IN :ids", order_ids)
            events = await count_in(
                connection,
                "SELECT COUNT(*) FROM processed_events WHERE source = 'stripe' AND event_id IN :ids",
                event_ids,
            )
            paid = await count_in(
                connection,
                "SELECT COUNT(*) FROM orders WHERE id IN :ids AND status IN ('paid', 'fulfilling')",
                webhook_order_ids,
            )
    finally:
        await engine.dispose()
    return Stored(int(turns), int(chats), orders, events, paid)
