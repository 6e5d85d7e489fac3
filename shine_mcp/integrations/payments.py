"""Payments behind one small interface, `PaymentGateway`, with two implementations chosen once from Settings:

- `StripeGateway`: Stripe Checkout through the real `stripe` SDK (`STRIPE_SECRET_KEY`, optionally
  `STRIPE_API_BASE` for a Stripe-compatible API such as a local fake);
- `SimulatedGateway`: a local stand-in that takes no money but behaves like Stripe where Shine can see it:
  sessions with ids and URLs, idempotency keys, and webhook events signed with Stripe's scheme (with a
  local secret) that go through the same verification as Stripe's.

Order rules (prices, states, refunds) live in `shine_mcp.orders`; this module only speaks to the provider.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import ssl
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import anyio
import httpx2
import stripe

from shine_mcp.clock import utcnow
from shine_mcp.money import MoneyError, from_stripe_amount, stripe_amount

SIMULATED_PREFIX = "cs_sim_"
EVENT_API_VERSION = "2026-10-28.endive"


class PaymentError(Exception):
    """The provider refused or did not answer. `message` is safe to show; `retryable` says whether the same
    call (same idempotency key) may succeed later."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.retryable, self.status = message, retryable, status


class SignatureError(Exception):
    """A webhook whose `Stripe-Signature` is missing, wrong or too old."""


# --- what Shine asks for and gets back ---------------------------------------------------------------
@dataclass(frozen=True)
class LineItem:
    product_id: str
    name: str
    unit_amount: int  # ISO 4217 minor units (Shine's); `params()` turns them into Stripe's
    quantity: int


@dataclass(frozen=True)
class SessionRequest:
    """One Checkout Session, built only from a stored order so a retry sends exactly the same request."""

    order_id: str
    user_id: str
    currency: str
    lines: tuple[LineItem, ...]
    success_url: str
    cancel_url: str
    customer_email: str | None = None
    shipping_countries: tuple[str, ...] = ()

    @property
    def amount_total(self) -> int:
        return sum(line.unit_amount * line.quantity for line in self.lines)

    @property
    def stripe_amount_total(self) -> int:
        return sum(stripe_amount(line.unit_amount, self.currency) * line.quantity for line in self.lines)

    def params(self) -> dict[str, Any]:
        """The `POST /v1/checkout/sessions` parameters, amounts in Stripe's units (raises MoneyError for a
        price Stripe cannot charge exactly)."""
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": self.currency.lower(),
                        "unit_amount": stripe_amount(line.unit_amount, self.currency),
                        "product_data": {"name": line.name, "metadata": {"product_id": line.product_id}},
                    },
                    "quantity": line.quantity,
                }
                for line in self.lines
            ],
            "client_reference_id": self.order_id,
            "metadata": {"order_id": self.order_id},
            "payment_intent_data": {"metadata": {"order_id": self.order_id}},
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
        }
        if self.customer_email:
            params["customer_email"] = self.customer_email
        if self.shipping_countries:
            params["shipping_address_collection"] = {"allowed_countries": list(self.shipping_countries)}
        return params


def _when(epoch: Any) -> datetime | None:
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else None


def shipping_of(session: Mapping[str, Any]) -> dict[str, Any] | None:
    """The shipping name and address of a completed session (newer API versions nest it)."""
    collected = session.get("collected_information") or {}
    details = collected.get("shipping_details") or session.get("shipping_details")
    if not details:
        return None
    return {"name": details.get("name"), "address": dict(details.get("address") or {})}


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    amount_total: int | None
    currency: str | None
    client_reference_id: str | None
    payment_intent: str | None
    customer_email: str | None
    expires_at: datetime | None
    shipping: dict[str, Any] | None = None

    @property
    def paid(self) -> bool:
        return self.status == "complete" and self.payment_status in ("paid", "no_payment_required")

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> CheckoutSession:
        details = data.get("customer_details") or {}
        intent = data.get("payment_intent")
        if isinstance(intent, Mapping):  # expanded
            intent = intent.get("id")
        metadata = data.get("metadata") or {}
        currency = (data.get("currency") or "").upper() or None
        total = data.get("amount_total")
        return cls(
            id=str(data["id"]),
            url=data.get("url"),
            status=str(data.get("status") or "open"),
            payment_status=str(data.get("payment_status") or "unpaid"),
            amount_total=None if total is None else from_stripe_amount(int(total), currency or ""),
            currency=currency,
            client_reference_id=data.get("client_reference_id") or metadata.get("order_id"),
            payment_intent=intent,
            customer_email=details.get("email") or data.get("customer_email"),
            expires_at=_when(data.get("expires_at")),
            shipping=shipping_of(data),
        )


@dataclass(frozen=True)
class RefundResult:
    id: str
    amount: int
    currency: str
    status: str  # pending | succeeded | failed | requires_action | canceled

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> RefundResult:
        currency = str(data.get("currency") or "").upper()
        return cls(
            id=str(data["id"]),
            amount=from_stripe_amount(int(data["amount"]), currency),
            currency=currency,
            status=str(data.get("status") or "pending"),
        )


class PaymentGateway(Protocol):
    kind: Literal["stripe", "simulated"]

    async def create_session(self, request: SessionRequest, *, idempotency_key: str) -> CheckoutSession: ...

    async def retrieve_session(self, session_id: str) -> CheckoutSession: ...

    async def expire_session(self, session_id: str) -> CheckoutSession:
        """Close an open session so it can no longer be paid; returns the session as it now is (a
        session that was already complete or expired comes back unchanged)."""
        ...

    async def refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult: ...

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event of a webhook request, after checking its `Stripe-Signature` (raises SignatureError)."""
        ...

    async def close(self) -> None: ...


# --- Stripe --------------------------------------------------------------------------------------------
Sleep = Callable[[float], Awaitable[None]]


class _HTTPXClient(stripe.HTTPClient):
    """The stripe SDK's transport on Shine's own HTTP client (httpx2), through `stripe.HTTPClient`, the base the SDK
    offers custom clients (its own `HTTPXClient` is reached only through private methods). Async only; the
    retry back-off sleep is injectable. The SDK keeps retries, idempotency and error parsing."""

    name = "shine-httpx"

    def __init__(self, sleep: Sleep, *, timeout: float) -> None:
        super().__init__()
        self._sleep = sleep
        self._http = httpx2.AsyncClient(
            timeout=timeout, verify=ssl.create_default_context(cafile=stripe.ca_bundle_path)
        )

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> httpx2.Response:
        # The SDK hands over the body already form-encoded: it goes as raw `content`.
        request = self._http.build_request(method, url, headers=dict(headers), content=post_data or None)
        try:
            return await self._http.send(request, stream=True)
        except httpx2.HTTPError as exc:
            raise stripe.APIConnectionError(
                f"could not reach Stripe ({type(exc).__name__})", should_retry=True
            ) from exc

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        response = await self._send(method, url, headers, post_data)
        try:
            content = await response.aread()
        except httpx2.HTTPError as exc:
            raise stripe.APIConnectionError(
                f"Stripe's answer was cut off ({type(exc).__name__})", should_retry=True
            ) from exc
        finally:
            await response.aclose()
        return content, response.status_code, response.headers

    async def request_stream_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[AsyncIterable[bytes], int, Mapping[str, str]]:
        response = await self._send(method, url, headers, post_data)
        return response.aiter_bytes(), response.status_code, response.headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return self._sleep(secs)

    async def close_async(self) -> None:
        await self._http.aclose()

    def close(self) -> None:
        """Nothing to close on the synchronous side: Shine makes only async calls."""


def payment_error(exc: stripe.StripeError) -> PaymentError:
    status = exc.http_status
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return PaymentError(
            "Stripe refused the shop's API key; the merchant must check STRIPE_SECRET_KEY",
            retryable=False,
            status=status,
        )
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (status or 0) >= 500:
        return PaymentError("Stripe did not answer; try again in a moment", retryable=True, status=status)
    if status == 409:
        return PaymentError(
            "Stripe is still handling the same request; try again", retryable=True, status=409
        )
    detail = exc.user_message or "the request was refused"
    return PaymentError(f"Stripe: {detail}", retryable=False, status=status)


class StripeGateway:
    kind: Literal["stripe", "simulated"] = "stripe"

    def __init__(
        self,
        api_key: str,
        webhook_secret: str | None,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout: float = 30.0,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._http = _HTTPXClient(sleep, timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )
        self._webhook_secret = webhook_secret

    @property
    def client(self) -> stripe.StripeClient:
        """The SDK client, for the recurring payments (`shine_mcp.integrations.billing`)."""
        return self._client

    async def create_session(self, request: SessionRequest, *, idempotency_key: str) -> CheckoutSession:
        try:
            params = request.params()
        except MoneyError as exc:
            raise PaymentError(str(exc), retryable=False) from exc
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return CheckoutSession.of(session.to_dict())

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        try:
            session = await self._client.v1.checkout.sessions.retrieve_async(session_id)
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return CheckoutSession.of(session.to_dict())

    async def expire_session(self, session_id: str) -> CheckoutSession:
        try:
            session = await self._client.v1.checkout.sessions.expire_async(session_id)
        except stripe.InvalidRequestError:
            # Only open sessions can be expired: report what the session is instead.
            return await self.retrieve_session(session_id)
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return CheckoutSession.of(session.to_dict())

    async def refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult:
        try:
            sent = stripe_amount(amount, currency)
        except MoneyError as exc:
            raise PaymentError(str(exc), retryable=False) from exc
        try:
            refund = await self._client.v1.refunds.create_async(
                {"payment_intent": payment_intent, "amount": sent, "metadata": dict(metadata)},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return RefundResult.of(refund.to_dict())

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        if not self._webhook_secret:
            raise SignatureError("STRIPE_WEBHOOK_SECRET is not set, so no webhook can be verified")
        return verified_event(payload, signature, self._webhook_secret)

    async def close(self) -> None:
        await self._http.close_async()


def verified_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """Check `Stripe-Signature` with the stripe SDK (HMAC over the raw body, 5-minute tolerance), then
    read the body as plain JSON: the SDK's StripeObject tree is not needed and costs more than the check."""
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
    except stripe.SignatureVerificationError as exc:
        raise SignatureError(str(exc)) from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise SignatureError("the body is not a JSON event") from exc
    if not isinstance(event, dict):
        raise SignatureError("the body is not a JSON event")
    return event


# --- the simulated checkout ----------------------------------------------------------------------------
def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value, computed the way Stripe computes it."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


class SessionLedger(Protocol):
    """Where the simulated gateway keeps its sessions (a database table: sessions survive restarts)."""

    async def add(
        self, data: dict[str, Any], *, idempotency_key: str, user_id: str, expires_at: datetime
    ) -> dict[str, Any]: ...

    async def get(self, session_id: str) -> dict[str, Any] | None: ...

    async def by_payment_intent(self, payment_intent: str) -> dict[str, Any] | None: ...

    async def save(self, data: dict[str, Any], *, expected_status: str | None = None) -> bool: ...

    async def open_past(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]: ...


EventSink = Callable[[bytes, str], Awaitable[None]]
_LEDGER_ONLY = ("refunds", "amount_refunded", "line_items")


def _public(session: Mapping[str, Any]) -> dict[str, Any]:
    """A session as an event carries it (without what only the simulated ledger keeps)."""
    return {k: v for k, v in session.items() if k not in _LEDGER_ONLY}


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


@dataclass
class SimulatedGateway:
    """Sessions kept in `ledger`; events signed with `webhook_secret` and handed to `deliver`, which is
    the same handler `/stripe/webhook` calls (so verification, deduplication and state changes are the
    code production runs). `pay` is what the simulated checkout page's Pay button does."""

    ledger: SessionLedger
    webhook_secret: str
    base_url: str
    deliver: EventSink | None = None
    session_ttl: timedelta = timedelta(hours=24)
    clock: Callable[[], datetime] = field(default=utcnow)
    kind: Literal["stripe", "simulated"] = "simulated"
    # Told of a paid `mode=subscription` session: the simulated billing starts the subscription.
    on_subscription: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def create_session(self, request: SessionRequest, *, idempotency_key: str) -> CheckoutSession:
        now = self.clock()
        session_id = _token(SIMULATED_PREFIX)
        try:  # amounts in Stripe's units, as Stripe keeps them
            params, total = request.params(), request.stripe_amount_total
        except MoneyError as exc:
            raise PaymentError(str(exc), retryable=False) from exc
        expires = now + self.session_ttl
        data = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"{self.base_url}/simulated-checkout/{session_id}",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": request.currency.lower(),
            "client_reference_id": request.order_id,
            "metadata": params["metadata"],
            "customer_email": request.customer_email,
            "customer_details": None,
            "payment_intent": None,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "created": int(now.timestamp()),
            "expires_at": int(expires.timestamp()),
            "livemode": False,
            "shipping_address_collection": params.get("shipping_address_collection"),
            # Stripe returns line items only when expanded; the simulated page shows them.
            "line_items": {
                "object": "list",
                "data": [
                    {
                        "description": item["price_data"]["product_data"]["name"],
                        "quantity": item["quantity"],
                        "amount_total": item["price_data"]["unit_amount"] * item["quantity"],
                        "price": {
                            "unit_amount": item["price_data"]["unit_amount"],
                            "currency": request.currency.lower(),
                        },
                    }
                    for item in params["line_items"]
                ],
            },
            "amount_refunded": 0,
            "refunds": [],
        }
        stored = await self.ledger.add(
            data, idempotency_key=idempotency_key, user_id=request.user_id, expires_at=expires
        )
        if stored["client_reference_id"] != request.order_id or stored["amount_total"] != total:
            # What Stripe answers when a key is reused with other parameters.
            raise PaymentError(
                "the idempotency key was already used with different parameters", retryable=False, status=400
            )
        return CheckoutSession.of(stored)

    async def _load(self, session_id: str) -> dict[str, Any]:
        data = await self.ledger.get(session_id)
        if data is None:
            raise PaymentError(f"no such checkout session: {session_id!r}", retryable=False, status=404)
        return data

    async def retrieve_session(self, session_id: str) -> CheckoutSession:
        return CheckoutSession.of(await self._load(session_id))

    async def session_data(self, session_id: str) -> dict[str, Any] | None:
        """The whole stored session (line items included), for the simulated checkout page."""
        return await self.ledger.get(session_id)

    async def expire_session(self, session_id: str) -> CheckoutSession:
        data = await self._load(session_id)
        if data["status"] == "open":
            data["status"] = "expired"
            if await self.ledger.save(data, expected_status="open"):
                await self._send("checkout.session.expired", _public(data), f"evt_sim_exp_{session_id}")
            else:
                data = await self._load(session_id)
        return CheckoutSession.of(data)

    async def pay(self, session_id: str) -> CheckoutSession:
        """Complete an open session as if the shopper paid (re-sending the completion event when the
        session is already complete, as Stripe re-delivers an event whose delivery failed)."""
        data = await self._load(session_id)
        if data["status"] == "open" and int(data["expires_at"]) <= int(self.clock().timestamp()):
            return await self.expire_session(session_id)
        if data["status"] == "open":
            data.update(
                status="complete",
                payment_status="paid",
                payment_intent=_token("pi_sim_"),
                customer_details={
                    "email": data.get("customer_email"),
                    "name": "Simulated shopper",
                },
            )
            if data.get("shipping_address_collection"):
                data["collected_information"] = {
                    "shipping_details": {
                        "name": "Simulated shopper",
                        "address": {
                            "line1": "1 Simulation Street",
                            "line2": None,
                            "city": "Testville",
                            "state": None,
                            "postal_code": "00000",
                            "country": data["shipping_address_collection"]["allowed_countries"][0],
                        },
                    }
                }
            if not await self.ledger.save(data, expected_status="open"):
                return await self.retrieve_session(session_id)  # expired or paid meanwhile
        if data["status"] == "complete":
            await self._send("checkout.session.completed", _public(data), f"evt_sim_done_{session_id}")
            if data.get("mode") == "subscription" and self.on_subscription is not None:
                await self.on_subscription(data)
        return CheckoutSession.of(data)

    async def refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> RefundResult:
        data = await self.ledger.by_payment_intent(payment_intent)
        if data is None:
            raise PaymentError(f"no such payment: {payment_intent!r}", retryable=False, status=404)
        try:
            amount = stripe_amount(amount, currency)
        except MoneyError as exc:
            raise PaymentError(str(exc), retryable=False) from exc
        for made in data["refunds"]:
            if made["idempotency_key"] == idempotency_key:
                if made["amount"] != amount:
                    raise PaymentError(
                        "the idempotency key was already used with a different amount",
                        retryable=False,
                        status=400,
                    )
                return RefundResult.of(made)
        remaining = int(data["amount_total"]) - int(data["amount_refunded"])
        if amount <= 0 or amount > remaining:
            raise PaymentError(
                f"the refund of {amount} is more than the {remaining} left on the payment",
                retryable=False,
                status=400,
            )
        refund = {
            "id": _token("re_sim_"),
            "object": "refund",
            "amount": amount,
            "currency": data["currency"],
            "payment_intent": payment_intent,
            "status": "succeeded",
            "metadata": dict(metadata),
            "idempotency_key": idempotency_key,
            "created": int(self.clock().timestamp()),
        }
        data["refunds"].append(refund)
        data["amount_refunded"] = int(data["amount_refunded"]) + amount
        await self.ledger.save(data)
        charge = {
            "id": "ch_sim_" + payment_intent.removeprefix("pi_sim_"),
            "object": "charge",
            "amount": data["amount_total"],
            "amount_refunded": data["amount_refunded"],
            "currency": data["currency"],
            "payment_intent": payment_intent,
            "refunded": data["amount_refunded"] >= data["amount_total"],
            "metadata": {"order_id": data["client_reference_id"]},
        }
        await self._send("charge.refunded", charge, f"evt_sim_ref_{refund['id']}")
        return RefundResult.of(refund)

    async def expire_due(self) -> int:
        """Expire open sessions past their time, sending `checkout.session.expired` as Stripe does."""
        due = await self.ledger.open_past(self.clock())
        for data in due:
            await self.expire_session(data["id"])
        return len(due)

    def signed_event(self, type_: str, obj: Mapping[str, Any], event_id: str) -> tuple[bytes, str]:
        event = {
            "id": event_id,
            "object": "event",
            "api_version": EVENT_API_VERSION,
            "created": int(self.clock().timestamp()),
            "type": type_,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": dict(obj)},
        }
        payload = json.dumps(event, separators=(",", ":")).encode()
        return payload, sign_payload(payload, self.webhook_secret)

    async def _send(self, type_: str, obj: Mapping[str, Any], event_id: str) -> None:
        if self.deliver is None:
            return
        payload, header = self.signed_event(type_, obj, event_id)
        await self.deliver(payload, header)

    def verify_event(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        return verified_event(payload, signature, self.webhook_secret)

    async def close(self) -> None:
        return None
