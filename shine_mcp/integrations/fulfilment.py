"""Fulfilment partners (dropshipping): deliver one paid order as a signed JSON POST, and check the
signature of a partner's callback. Which order goes where, retries and fallback live in
`shine_mcp.orders.fulfilment`; this module only speaks HTTP.

Signature scheme (both directions, same as Stripe's so partners can reuse their code):
`Shine-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the shared secret>`.
Every delivery carries `Idempotency-Key: <fulfilment job id>`, the same on every retry and partner.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx2

from shine_mcp import __version__

SIGNATURE_HEADER = "Shine-Signature"
TOLERANCE_SECONDS = 300
# Status codes that say "not now" rather than "no": try the same partner again later.
_RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Partner:
    name: Literal["primary", "fallback"]
    url: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"Partner(name={self.name!r}, url={self.url!r})"


@dataclass(frozen=True)
class Delivery:
    outcome: Literal["accepted", "rejected", "retry"]
    detail: str
    reference: str | None = None


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(body: bytes, header: str | None, secrets: Iterable[str], *, now: float | None = None) -> bool:
    """Whether `header` signs `body` with one of `secrets`, within five minutes of now."""
    if not header:
        return False
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        stamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > TOLERANCE_SECONDS:
        return False
    for secret in secrets:
        expected = sign(body, secret, stamp).split("v1=", 1)[1]
        if hmac.compare_digest(expected, given):
            return True
    return False


def _detail(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f"HTTP {response.status_code}" + (f": {text[:200]}" if text else "")
    message = body.get("error") or body.get("message") if isinstance(body, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    return f"HTTP {response.status_code}" + (f": {str(message)[:200]}" if message else "")


def _reference(response: httpx2.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    value = body.get("id") or body.get("reference")
    return str(value)[:200] if value else None


class PartnerClient:
    """One HTTP client for every partner; `transport` is a seam for tests that need no sockets."""

    def __init__(self, *, timeout: float = 10.0, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._http = httpx2.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"shine/{__version__}"},
            follow_redirects=False,
        )

    async def deliver(self, partner: Partner, payload: dict[str, Any], idempotency_key: str) -> Delivery:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            SIGNATURE_HEADER: sign(body, partner.secret),
        }
        try:
            response = await self._http.post(partner.url, content=body, headers=headers)
        except httpx2.TimeoutException:
            return Delivery("retry", f"{partner.name} partner timed out")
        except httpx2.HTTPError as exc:
            return Delivery("retry", f"{partner.name} partner unreachable: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return Delivery("accepted", _detail(response), _reference(response))
        if status == 409:  # "I already have this one": an earlier attempt got through
            return Delivery("accepted", "already received earlier", _reference(response))
        if status in _RETRY_STATUSES or status >= 500:
            return Delivery("retry", _detail(response))
        return Delivery("rejected", _detail(response))

    async def close(self) -> None:
        await self._http.aclose()
