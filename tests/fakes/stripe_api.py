"""A local stand-in for the parts of Stripe's API Shine uses, speaking its wire format.

Endpoints: `POST /v1/checkout/sessions` (create, `mode=payment` or `mode=subscription` with prices recurring
by `price_data[recurring]`), `GET /v1/checkout/sessions/{id}` (retrieve), `POST /v1/checkout/sessions/{id}/expire`,
`POST /v1/refunds`, and Stripe Billing's `GET /v1/subscriptions/{id}`, `POST /v1/subscriptions/{id}` (update:
`cancel_at_period_end`, `pause_collection`, `items[n][id|quantity|price_data]`) and `DELETE /v1/subscriptions/{id}`. Requests are form-encoded with Stripe's
bracket notation (`line_items[0][price_data][currency]=usd`), authenticated with a bearer secret key, and
answered with Stripe's JSON objects and error envelopes.

Idempotency works as Stripe's does: the first response to an `Idempotency-Key` is saved and replayed for
the same key (with `Idempotent-Replayed: true`); the same key with other parameters is an
`idempotency_error`. Every request is recorded with its key for assertions.

Tests steer it through `FakeStripe`: `fail_next` (a 500 before anything happens, as in an outage),
`lose_next_response` (the request is carried out, then the answer is lost: what a crash or a dropped
connection looks like to the caller), `complete` / `expire_by_stripe` (what the shopper or Stripe does),
and `complete_subscription` / `renew` / `retry` (a subscription's checkout, renewals and failed-charge retries, as
Stripe Billing's clock would make them), and `events`, the webhook events Stripe would send, which `signed` turns into a body and a
`Stripe-Signature` header computed with Stripe's scheme (independently of Shine's code).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serve_asgi

API_KEY = "sk_test_shine_fake_0123456789"
WEBHOOK_SECRET = "whsec_test_shine_fake_0123456789"
_KEY_PART = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [a or b for a, b in _KEY_PART.findall(key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node: Any) -> Any:
        if isinstance(node, dict):
            converted = {k: listify(v) for k, v in node.items()}
            if converted and all(k.isdigit() for k in converted):
                return [converted[k] for k in sorted(converted, key=int)]
            return converted
        return node

    return listify(root)


def _error(status: int, type_: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message, **extra}}, status_code=status)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int = 0


@dataclass
class FakeStripe:
    url: str = ""
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)  # by payment intent id
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # what Stripe would deliver, oldest first
    failures: list[tuple[str, int, bool]] = field(default_factory=list)  # (path prefix, status, should_retry)
    lost: list[str] = field(default_factory=list)  # path prefixes whose next answer is lost
    _saved: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    clock: int = 0  # a test clock: `renew` moves it to the period's end; it never goes back

    def now(self) -> int:
        self.clock = max(self.clock, int(time.time()))
        return self.clock

    # --- steering ----------------------------------------------------------------------------------------
    def fail_next(self, path: str, status: int = 500, *, should_retry: bool = False) -> None:
        self.failures.append((path, status, should_retry))

    def lose_next_response(self, path: str) -> None:
        self.lost.append(path)

    def posts(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    def complete(
        self, session_id: str, *, payment_status: str = "paid", email: str = "ana@example.com"
    ) -> dict[str, Any]:
        """The shopper pays (or, with `payment_status="unpaid"`, starts a bank debit that settles later);
        returns the `checkout.session.completed` event Stripe sends."""
        session = self.sessions[session_id]
        intent = "pi_" + secrets.token_hex(12)
        session.update(
            status="complete",
            payment_status=payment_status,
            payment_intent=intent,
            customer_details={"email": email, "name": "Ana Example", "address": None},
        )
        if session.get("shipping_address_collection"):
            session["collected_information"] = {
                "shipping_details": {
                    "name": "Ana Example",
                    "address": {
                        "line1": "1 Main St",
                        "line2": None,
                        "city": "Springfield",
                        "state": "OR",
                        "postal_code": "97477",
                        "country": "US",
                    },
                }
            }
        self.charges[intent] = {
            "id": "ch_" + secrets.token_hex(12),
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": 0,
            "currency": session["currency"],
            "payment_intent": intent,
            "refunded": False,
            "metadata": dict((session.get("payment_intent_data") or {}).get("metadata") or {}),
        }
        return self.emit("checkout.session.completed", session)

    def settle(self, session_id: str, *, succeeded: bool = True) -> dict[str, Any]:
        """A delayed payment method settles (or fails) after the session completed."""
        session = self.sessions[session_id]
        session["payment_status"] = "paid" if succeeded else "unpaid"
        kind = "async_payment_succeeded" if succeeded else "async_payment_failed"
        return self.emit(f"checkout.session.{kind}", session)

    def expire_by_stripe(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        session["status"] = "expired"
        return self.emit("checkout.session.expired", session)

    def dispute(self, payment_intent: str, reason: str = "fraudulent") -> dict[str, Any]:
        charge = self.charges[payment_intent]
        dispute = {
            "id": "dp_" + secrets.token_hex(12),
            "object": "dispute",
            "amount": charge["amount"],
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": payment_intent,
            "reason": reason,
            "status": "needs_response",
            "metadata": {},
        }
        return self.emit("charge.dispute.created", dispute)

    def refund_in_dashboard(self, payment_intent: str, amount: int) -> dict[str, Any]:
        """The merchant refunds in the Stripe dashboard: Shine hears of it only through the webhook."""
        status, body = self._refund({"payment_intent": payment_intent, "amount": str(amount)})
        assert status == 200, body
        return self.last_event("charge.refunded")

    def complete_subscription(
        self, session_id: str, *, email: str = "ana@example.com"
    ) -> list[dict[str, Any]]:
        """The shopper pays a `mode=subscription` session: Stripe starts the subscription and pays its first
        invoice. Returns the events it sends: `checkout.session.completed`, `customer.subscription.created`,
        `invoice.paid`."""
        session = self.sessions[session_id]
        now = int(time.time())
        sub_id, customer = "sub_" + secrets.token_hex(12), "cus_" + secrets.token_hex(7)
        metadata = dict((session.get("subscription_data") or {}).get("metadata") or {})
        items = []
        for i, line in enumerate(session["line_items_params"]):
            price = line["price_data"]
            recurring = {
                "interval": price["recurring"]["interval"],
                "interval_count": int(price["recurring"].get("interval_count", 1)),
            }
            items.append(
                {
                    "id": f"si_{secrets.token_hex(7)}{i}",
                    "object": "subscription_item",
                    "quantity": int(line["quantity"]),
                    "metadata": {},
                    "price": {
                        "id": "price_" + secrets.token_hex(12),
                        "object": "price",
                        "currency": price["currency"],
                        "unit_amount": int(price["unit_amount"]),
                        "product": "prod_" + secrets.token_hex(7),
                        "recurring": recurring,
                        "type": "recurring",
                    },
                    "current_period_start": now,
                    "current_period_end": now + self._period(recurring),
                }
            )
        subscription = {
            "id": sub_id,
            "object": "subscription",
            "status": "active",
            "customer": customer,
            "metadata": metadata,
            "cancel_at_period_end": False,
            "pause_collection": None,
            "created": now,
            "start_date": now,
            "ended_at": None,
            "currency": session["currency"],
            "items": {"object": "list", "data": items},
        }
        self.subscriptions[sub_id] = subscription
        session.update(
            status="complete",
            payment_status="paid",
            subscription=sub_id,
            customer=customer,
            customer_details={"email": email, "name": "Ana Example", "address": None},
        )
        completed = self.emit("checkout.session.completed", session)
        created = self.emit("customer.subscription.created", subscription)
        invoice = self._invoice(subscription, "subscription_create", paid=True)
        return [completed, created, self.emit("invoice.paid", invoice)]

    @staticmethod
    def _period(recurring: dict[str, Any]) -> int:
        days = {"day": 1, "week": 7, "month": 30, "year": 365}[recurring["interval"]]
        return days * int(recurring["interval_count"]) * 24 * 3600

    def _invoice(
        self, subscription: dict[str, Any], reason: str, *, paid: bool, at: int | None = None
    ) -> dict[str, Any]:
        items = subscription["items"]["data"]
        amount = sum(i["price"]["unit_amount"] * i["quantity"] for i in items)
        now = int(time.time()) if at is None else at
        invoice = {
            "id": "in_" + secrets.token_hex(12),
            "object": "invoice",
            "status": "paid" if paid else "open",
            "customer": subscription["customer"],
            "currency": subscription["currency"],
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "attempt_count": 1,
            "billing_reason": reason,
            "created": now,
            "status_transitions": {"paid_at": now if paid else None},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": subscription["id"],
                    "metadata": dict(subscription["metadata"]),
                },
            },
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": "il_" + secrets.token_hex(8),
                        "object": "line_item",
                        "amount": i["price"]["unit_amount"] * i["quantity"],
                        "quantity": i["quantity"],
                        "period": {"start": i["current_period_start"], "end": i["current_period_end"]},
                    }
                    for i in items
                ],
            },
        }
        self.invoices[invoice["id"]] = invoice
        return invoice

    def renew(self, sub_id: str, *, fail: bool = False) -> dict[str, Any]:
        """Stripe's clock (a test clock) reaches the end of the period: the next period's invoice is paid
        (or its charge fails and the subscription is past due), with the events dated then. Returns
        `invoice.paid` or `invoice.payment_failed`."""
        subscription = self.subscriptions[sub_id]
        start = 0
        for item in subscription["items"]["data"]:
            start = item["current_period_end"]
            item["current_period_start"] = start
            item["current_period_end"] = start + self._period(item["price"]["recurring"])
        self.clock = max(self.clock, start)
        invoice = self._invoice(subscription, "subscription_cycle", paid=not fail, at=start)
        subscription["status"] = "past_due" if fail else "active"
        event = self.emit("invoice.payment_failed" if fail else "invoice.paid", invoice, at=start)
        self.emit("customer.subscription.updated", subscription, at=start)
        return event

    def retry(self, sub_id: str, invoice_id: str) -> dict[str, Any]:
        """Stripe's retry of a failed charge succeeds: `invoice.paid` for the same invoice."""
        invoice = self.invoices[invoice_id]
        now = int(invoice["created"]) + 3 * 24 * 3600  # Stripe's smart retries try again days later
        self.clock = max(self.clock, now)
        invoice.update(
            status="paid", amount_paid=invoice["amount_due"], attempt_count=invoice["attempt_count"] + 1
        )
        invoice["status_transitions"] = {"paid_at": now}
        self.subscriptions[sub_id]["status"] = "active"
        event = self.emit("invoice.paid", invoice, at=now)
        self.emit("customer.subscription.updated", self.subscriptions[sub_id], at=now)
        return event

    def emit(self, type_: str, obj: dict[str, Any], *, at: int | None = None) -> dict[str, Any]:
        public = {k: v for k, v in obj.items() if k not in self._PRIVATE}
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": self.now() if at is None else at,
            "type": type_,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": json.loads(json.dumps(public))},
        }
        self.events.append(event)
        return event

    def last_event(self, type_: str) -> dict[str, Any]:
        return next(e for e in reversed(self.events) if e["type"] == type_)

    # --- the API -----------------------------------------------------------------------------------------
    def _create_session(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mode = params.get("mode")
        if mode not in ("payment", "subscription"):
            return 400, {
                "type": "invalid_request_error",
                "message": "mode must be payment or subscription",
                "param": "mode",
            }
        if not params.get("success_url"):
            return 400, {
                "type": "invalid_request_error",
                "message": "Missing success_url",
                "param": "success_url",
            }
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            return 400, {
                "type": "invalid_request_error",
                "message": "line_items is required",
                "param": "line_items",
            }
        total, currencies = 0, set()
        for i, item in enumerate(items):
            price = item.get("price_data") or {}
            try:
                amount, quantity = int(price["unit_amount"]), int(item["quantity"])
                name = price["product_data"]["name"]
                currencies.add(price["currency"])
            except (KeyError, ValueError, TypeError):
                return 400, {
                    "type": "invalid_request_error",
                    "message": f"line_items[{i}] needs price_data[currency], [unit_amount], [product_data][name] and quantity",
                    "param": f"line_items[{i}]",
                }
            if amount < 0 or quantity < 1 or not name:
                return 400, {
                    "type": "invalid_request_error",
                    "message": "bad amount or quantity",
                    "param": f"line_items[{i}]",
                }
            recurring = price.get("recurring")
            if (mode == "subscription") != bool(recurring):
                return 400, {
                    "type": "invalid_request_error",
                    "message": "You must specify `price_data[recurring]` in `subscription` mode (and only there).",
                    "param": f"line_items[{i}][price_data][recurring]",
                }
            if recurring and recurring.get("interval") not in ("day", "week", "month", "year"):
                return 400, {
                    "type": "invalid_request_error",
                    "message": "Invalid recurring interval",
                    "param": f"line_items[{i}][price_data][recurring][interval]",
                }
            total += amount * quantity
        if len(currencies) != 1:
            return 400, {"type": "invalid_request_error", "message": "line items must share one currency"}
        session_id = "cs_test_" + secrets.token_hex(16)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": currencies.pop(),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "customer_email": params.get("customer_email"),
            "customer_details": None,
            "payment_intent": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "expires_at": int(time.time()) + 24 * 3600,
            "livemode": False,
            "shipping_address_collection": params.get("shipping_address_collection"),
            "payment_intent_data": params.get("payment_intent_data") or {},
            "subscription_data": params.get("subscription_data") or {},
            "line_items_params": items,
            "subscription": None,
            "customer": None,
        }
        self.sessions[session_id] = session
        return 200, self._public(session)

    _PRIVATE = ("payment_intent_data", "subscription_data", "line_items_params")

    @classmethod
    def _public(cls, session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k not in cls._PRIVATE}

    def _refund(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        charge = self.charges.get(params.get("payment_intent", ""))
        if charge is None:
            return 400, {
                "type": "invalid_request_error",
                "message": f"No such payment_intent: '{params.get('payment_intent')}'",
                "code": "resource_missing",
            }
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        if amount > left or amount <= 0:
            return 400, {
                "type": "invalid_request_error",
                "message": f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "code": "amount_too_large",
            }
        refund = {
            "id": "re_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "status": "succeeded",
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.emit("charge.refunded", charge)
        return 200, refund

    async def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        path = request.url.path
        params = parse_form(list((await request.form()).multi_items())) if request.method == "POST" else {}  # type: ignore[arg-type]
        key = request.headers.get("idempotency-key")
        recorded = Recorded(request.method, path, params, key)
        self.requests.append(recorded)
        for i, (prefix, status, should_retry) in enumerate(self.failures):
            if path.startswith(prefix):
                del self.failures[i]
                recorded.status = status
                response = _error(status, "api_error", "Something went wrong on Stripe's end (injected).")
                response.headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
                return response
        fingerprint = json.dumps([path, params], sort_keys=True)
        if request.method == "POST" and key and key in self._saved:
            saved_fingerprint, status, body = self._saved[key]
            if saved_fingerprint != fingerprint:
                recorded.status = 400
                return _error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                )
            recorded.status = status
            return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
        status, body = self._route(request.method, path, params)
        if status >= 400:
            body = {"error": body}
        if request.method == "POST" and key:
            self._saved[key] = (fingerprint, status, body)
        recorded.status = status
        for i, prefix in enumerate(self.lost):
            if path.startswith(prefix):
                del self.lost[i]
                recorded.status = 500
                response = _error(500, "api_error", "The connection was lost (injected).")
                response.headers["Stripe-Should-Retry"] = "false"
                return response
        return JSONResponse(body, status_code=status)

    def _subscription(self, method: str, sub_id: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        subscription = self.subscriptions.get(sub_id)
        if subscription is None:
            return 404, {
                "type": "invalid_request_error",
                "message": f"No such subscription: '{sub_id}'",
                "code": "resource_missing",
            }
        if method == "GET":
            return 200, subscription
        if subscription["status"] == "canceled":
            return 400, {
                "type": "invalid_request_error",
                "message": "A canceled subscription can only update its cancellation_details and metadata.",
            }
        if method == "DELETE":
            subscription.update(status="canceled", ended_at=int(time.time()))
            self.emit("customer.subscription.deleted", subscription)
            return 200, subscription
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        if "pause_collection" in params:
            pause = params["pause_collection"]
            if pause == "":
                subscription["pause_collection"] = None
            elif pause.get("behavior") not in ("keep_as_draft", "mark_uncollectible", "void"):
                return 400, {
                    "type": "invalid_request_error",
                    "message": "Invalid pause_collection[behavior]",
                    "param": "pause_collection[behavior]",
                }
            else:
                resumes = pause.get("resumes_at")
                subscription["pause_collection"] = {
                    "behavior": pause["behavior"],
                    "resumes_at": int(resumes) if resumes else None,
                }
        by_id = {item["id"]: item for item in subscription["items"]["data"]}
        for change in params.get("items") or []:
            item = by_id.get(change.get("id"))
            if item is None:
                return 400, {
                    "type": "invalid_request_error",
                    "message": f"No such subscription item: '{change.get('id')}'",
                    "param": "items",
                }
            if "quantity" in change:
                item["quantity"] = int(change["quantity"])
            if "price_data" in change:
                price = change["price_data"]
                if not price.get("product") or not price.get("recurring"):
                    return 400, {
                        "type": "invalid_request_error",
                        "message": "price_data needs product and recurring",
                        "param": "items",
                    }
                item["price"] = {
                    "id": "price_" + secrets.token_hex(12),
                    "object": "price",
                    "currency": price["currency"],
                    "unit_amount": int(price["unit_amount"]),
                    "product": price["product"],
                    "recurring": {
                        "interval": price["recurring"]["interval"],
                        "interval_count": int(price["recurring"].get("interval_count", 1)),
                    },
                    "type": "recurring",
                }
        self.emit("customer.subscription.updated", subscription)
        return 200, subscription

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        sub_match = re.fullmatch(r"/v1/subscriptions/([^/]+)", path)
        if sub_match:
            return self._subscription(method, sub_match.group(1), params)
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(params)
        if method == "POST" and path == "/v1/refunds":
            return self._refund(params)
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)(/expire)?", path)
        if match and match.group(1) in self.sessions:
            session = self.sessions[match.group(1)]
            if method == "GET" and not match.group(2):
                return 200, self._public(session)
            if method == "POST" and match.group(2):
                if session["status"] != "open":
                    return 400, {
                        "type": "invalid_request_error",
                        "message": f'Only Checkout Sessions with a status in ["open"] can be expired; this one is {session["status"]}.',
                    }
                session["status"] = "expired"
                self.emit("checkout.session.expired", session)
                return 200, self._public(session)
        if match:
            return 404, {
                "type": "invalid_request_error",
                "message": f"No such checkout.session: '{match.group(1)}'",
                "code": "resource_missing",
            }
        return 404, {
            "type": "invalid_request_error",
            "message": f"Unrecognized request URL ({method} {path})",
        }


def signed(
    event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    """The body and `Stripe-Signature` header Stripe would send for `event`."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={stamp},v1={digest}"


def create_app(fake: FakeStripe) -> Starlette:
    return Starlette(
        routes=[Route("/v1/{path:path}", fake.handle, methods=["GET", "POST", "DELETE"])],
    )


@contextmanager
def running(fake: FakeStripe, port: int) -> Iterator[FakeStripe]:
    with serve_asgi(create_app(fake), port) as url:
        fake.url = url
        yield fake
