"""A local stand-in for a fulfilment (dropshipping) partner: `POST /orders` takes one order as JSON signed
with the shared secret (`Shine-Signature`, Stripe's scheme) and an `Idempotency-Key`.

Tests script its answers, one per request: `accept`, `reject` (422 with a reason), `error` (503), `hang`
(never answers, until the test ends: Shine's client must time out). A repeated idempotency key is answered
like the first acceptance (the partner keeps one order per key) and counted in `duplicates`.
`callback` builds the signed shipment notice the partner sends to Shine's `/fulfilment/callback`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serve_asgi

Answer = Literal["accept", "reject", "error", "hang"]


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    return (
        f"t={stamp},v1={hmac.new(secret.encode(), f'{stamp}.'.encode() + body, hashlib.sha256).hexdigest()}"
    )


def _valid(body: bytes, header: str | None, secret: str) -> bool:
    if not header:
        return False
    parts = dict(item.split("=", 1) for item in header.split(","))
    return hmac.compare_digest(sign(body, secret, int(parts.get("t", "0"))), header)


@dataclass
class FakePartner:
    secret: str
    name: str = "partner"
    script: list[Answer] = field(default_factory=list)  # consumed one per request; then `then`
    then: Answer = "accept"
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted orders, by arrival
    attempts: list[str] = field(default_factory=list)  # idempotency keys of every request
    duplicates: int = 0
    bad_signatures: int = 0
    _accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> partner order id
    _hanging: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)

    @property
    def orders_url(self) -> str:
        return f"{self.url}/orders"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if not _valid(body, request.headers.get("shine-signature"), self.secret):
            self.bad_signatures += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        key = request.headers.get("idempotency-key") or ""
        self.attempts.append(key)
        if key in self._accepted:
            self.duplicates += 1
            return JSONResponse({"id": self._accepted[key], "status": "accepted"})
        answer = self.script.pop(0) if self.script else self.then
        if answer == "hang":
            released = asyncio.Event()
            self._hanging.append((asyncio.get_running_loop(), released))
            await released.wait()
            return JSONResponse({"error": "too late"}, status_code=504)
        if answer == "error":
            return JSONResponse({"error": "warehouse system down"}, status_code=503)
        if answer == "reject":
            return JSONResponse({"error": "we do not ship these products"}, status_code=422)
        partner_id = f"{self.name}-{secrets.token_hex(4)}"
        self._accepted[key] = partner_id
        self.received.append(json.loads(body))
        return JSONResponse({"id": partner_id, "status": "accepted"}, status_code=201)

    def release(self) -> None:
        """Let hanging requests end (from the test's thread: the server runs its own loop)."""
        for loop, released in self._hanging:
            loop.call_soon_threadsafe(released.set)

    def callback(
        self, order_id: str, tracking: str, *, event_id: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "event_id": event_id or "shp_" + secrets.token_hex(6),
                "order_id": order_id,
                "status": "shipped",
                "tracking_number": tracking,
                "carrier": "UPS",
            }
        ).encode()
        return body, {"Content-Type": "application/json", "Shine-Signature": sign(body, self.secret)}


def create_app(partner: FakePartner) -> Starlette:
    return Starlette(routes=[Route("/orders", partner.handle, methods=["POST"])])


@contextmanager
def running(partner: FakePartner, port: int) -> Iterator[FakePartner]:
    with serve_asgi(create_app(partner), port) as url:
        partner.url = url
        try:
            yield partner
        finally:
            partner.release()
