"""A local stand-in for the parts of Stripe's API Shine uses, speaking its wire format.

Endpoints: `POST /v1/checkout/sessions` (create, `mode=payment` or `mode=subscription` with prices recurring
by `price_data[recurring]`), `GET /v1/checkout/sessions/{id}` (retrieve), `POST /v1/checkout/sessions/{id}/expire`,
`POST /v1/refunds`, and Stripe Billing's `GET /v1/subscriptions/{id}`, `POST /v1/subscriptions/{id}` (update:
`cancel_at_period_end`, `pause_collection`, `items[n][id|quantity|price_data]`, `proration_behavior`
(`create_prorations` | `always_invoice` | `none`) and `proration_date`; a price with another billing period
resets the billing cycle, as Stripe's does: a new period starts at the change and is invoiced at once),
`DELETE /v1/subscriptions/{id}`,
`POST /v1/invoices/create_preview` (a change's proration), `POST /v1/subscription_schedules[/{id}]` (a change
at the period's end) and `POST /v1/billing_portal/sessions`. Requests are form-encoded with Stripe's
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
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
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

    @staticmethod
    def address() -> dict[str, Any]:
        """The shipping address a shopper enters on the payment page (when the session collects one)."""
        return {
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
            session["collected_information"] = {"shipping_details": self.address()}
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
        if session.get("shipping_address_collection"):
            session["collected_information"] = {"shipping_details": self.address()}
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
        prorations = subscription.pop("pending_prorations", None) or []  # create_prorations' items
        amount += sum(p["amount"] for p in prorations)
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
                ]
                + prorations,
            },
        }
        self.invoices[invoice["id"]] = invoice
        if paid:
            self._pay_invoice(invoice)
        return invoice

    def _pay_invoice(self, invoice: dict[str, Any]) -> None:
        """A paid invoice has a payment intent and a charge (what a refund of its order refunds); newer API
        versions name it in `payments` rather than `payment_intent`."""
        intent = "pi_" + secrets.token_hex(12)
        invoice["payments"] = {
            "object": "list",
            "data": [
                {
                    "object": "invoice_payment",
                    "status": "paid",
                    "amount_paid": invoice["amount_paid"],
                    "payment": {"type": "payment_intent", "payment_intent": intent},
                }
            ],
        }
        self.charges[intent] = {
            "id": "ch_" + secrets.token_hex(12),
            "object": "charge",
            "amount": invoice["amount_paid"],
            "amount_refunded": 0,
            "currency": invoice["currency"],
            "payment_intent": intent,
            "refunded": False,
        }

    def renew(self, sub_id: str, *, fail: bool = False) -> dict[str, Any]:
        """Stripe's clock (a test clock) reaches the end of the period: the next period's invoice is paid
        (or its charge fails and the subscription is past due), with the events dated then. Returns
        `invoice.paid` or `invoice.payment_failed`."""
        subscription = self.subscriptions[sub_id]
        end = subscription["items"]["data"][0]["current_period_end"]
        if subscription["cancel_at_period_end"]:  # cancelled at the period's end: it ends, nothing is billed
            self.clock = max(self.clock, end)
            subscription.update(status="canceled", ended_at=end, canceled_at=end)
            return self.emit("customer.subscription.deleted", subscription, at=end)
        self._next_phase(subscription)
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

    def _next_phase(self, subscription: dict[str, Any]) -> None:
        """A subscription schedule's next phase starts at the period's end: its prices replace the items'
        (no proration, as the phase begins with the period), and a schedule ending in `release` lets go."""
        schedule = self.schedules.get(subscription.get("schedule") or "")
        if schedule is None or len(schedule["phases"]) < 2:
            return
        nxt = schedule["phases"][1]
        for item, phase_item in zip(subscription["items"]["data"], nxt["items"], strict=False):
            item["price"] = phase_item["price_object"]
            item["quantity"] = int(phase_item.get("quantity") or item["quantity"])
        schedule["phases"] = schedule["phases"][1:]
        if schedule["end_behavior"] == "release":
            schedule.update(status="released", released_subscription=subscription["id"], subscription=None)
            subscription["schedule"] = None

    def retry(self, sub_id: str, invoice_id: str) -> dict[str, Any]:
        """Stripe's retry of a failed charge succeeds: `invoice.paid` for the same invoice."""
        invoice = self.invoices[invoice_id]
        now = int(invoice["created"]) + 3 * 24 * 3600  # Stripe's smart retries try again days later
        self.clock = max(self.clock, now)
        invoice.update(
            status="paid", amount_paid=invoice["amount_due"], attempt_count=invoice["attempt_count"] + 1
        )
        invoice["status_transitions"] = {"paid_at": now}
        self._pay_invoice(invoice)
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

    _PRIVATE = ("payment_intent_data", "subscription_data", "line_items_params", "pending_prorations")

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
        if "cancel_at_period_end" in params and subscription.get("schedule"):
            return 400, {
                "type": "invalid_request_error",
                "message": f"The subscription is managed by the subscription schedule `{subscription['schedule']}`, "
                "and updating any cancelation behavior directly is not allowed. Please update the schedule instead.",
            }
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
        behavior = params.get("proration_behavior", "create_prorations")
        if behavior not in ("create_prorations", "always_invoice", "none"):
            return 400, {
                "type": "invalid_request_error",
                "message": "Invalid proration_behavior",
                "param": "proration_behavior",
            }
        at = int(params.get("proration_date") or self.now())
        status, changed = self._changed_items(subscription, params.get("items") or [])
        if status != 200:
            return status, changed
        lines, reset = self._prorations(subscription, changed["items"], at)
        if (
            reset and behavior == "none"
        ):  # the new period is charged in full, the old one's unused time not credited
            lines = [line for line in lines if line["amount"] > 0]
        for item, (price, quantity) in zip(subscription["items"]["data"], changed["items"], strict=True):
            item["price"], item["quantity"] = price, quantity
            if reset:  # another billing period resets the billing cycle: a new period starts now, whatever
                # the proration behaviour, and is invoiced at once
                item["current_period_start"], item["current_period_end"] = (
                    at,
                    at + self._period(price["recurring"]),
                )
        if lines and (behavior == "always_invoice" or reset):
            self._proration_invoice(subscription, lines, at)
        elif lines and behavior == "create_prorations":
            subscription.setdefault("pending_prorations", []).extend(lines)
        self.emit("customer.subscription.updated", subscription)
        return 200, self._public_sub(subscription)

    @staticmethod
    def _public_sub(subscription: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in subscription.items() if k != "pending_prorations"}

    def _changed_items(
        self, subscription: dict[str, Any], changes: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]]:
        """The (price, quantity) each item would have after `changes` (`items[n][id|quantity|price_data]`)."""
        after = {item["id"]: (item["price"], int(item["quantity"])) for item in subscription["items"]["data"]}
        for change in changes:
            if change.get("id") not in after:
                return 400, {
                    "type": "invalid_request_error",
                    "message": f"No such subscription item: '{change.get('id')}'",
                    "param": "items",
                }
            price, quantity = after[change["id"]]
            if "quantity" in change:
                quantity = int(change["quantity"])
            if "price_data" in change:
                data = change["price_data"]
                if not data.get("product") or not data.get("recurring"):
                    return 400, {
                        "type": "invalid_request_error",
                        "message": "price_data needs product and recurring",
                        "param": "items",
                    }
                price = self._price(data)
            after[change["id"]] = (price, quantity)
        return 200, {"items": [after[item["id"]] for item in subscription["items"]["data"]]}

    @staticmethod
    def _price(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "price_" + secrets.token_hex(12),
            "object": "price",
            "currency": data["currency"],
            "unit_amount": int(data["unit_amount"]),
            "product": data["product"],
            "recurring": {
                "interval": data["recurring"]["interval"],
                "interval_count": int(data["recurring"].get("interval_count", 1)),
            },
            "type": "recurring",
        }

    def _prorations(
        self, subscription: dict[str, Any], after: list[tuple[dict[str, Any], int]], at: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Stripe's proration for changing the items at `at`: a credit for the unused time of each changed
        item's old price and a charge for the new one over the same time; a new billing interval instead
        starts a new period at `at`, charged in full. Amounts are rounded half up per line."""
        lines: list[dict[str, Any]] = []
        reset = False
        for item, (price, quantity) in zip(subscription["items"]["data"], after, strict=True):
            old = item["price"]["unit_amount"] * item["quantity"]
            new = price["unit_amount"] * quantity
            if item["price"]["recurring"] != price["recurring"]:
                reset = True
            if old == new and not reset:
                continue
            start, end = item["current_period_start"], item["current_period_end"]
            left, whole = max(0, end - at), max(1, end - start)
            credit = (2 * old * left + whole) // (2 * whole)
            if reset:
                charge, period = new, {"start": at, "end": at + self._period(price["recurring"])}
            else:
                charge, period = (2 * new * left + whole) // (2 * whole), {"start": at, "end": end}
            for amount, what in ((-credit, "Unused time"), (charge, "Remaining time")):
                lines.append(
                    {
                        "id": "il_" + secrets.token_hex(8),
                        "object": "line_item",
                        "amount": amount,
                        "description": what,
                        "quantity": quantity,
                        "period": period if amount > 0 else {"start": at, "end": end},
                        "parent": {
                            "type": "subscription_item_details",
                            "subscription_item_details": {"proration": True, "subscription_item": item["id"]},
                        },
                    }
                )
        return lines, reset

    def _proration_invoice(self, subscription: dict[str, Any], lines: list[dict[str, Any]], at: int) -> None:
        """`always_invoice`: the prorations are invoiced and charged at once (a credit larger than the
        charge goes to the customer's balance: nothing is charged)."""
        total = sum(line["amount"] for line in lines)
        invoice = {
            "id": "in_" + secrets.token_hex(12),
            "object": "invoice",
            "status": "paid",
            "customer": subscription["customer"],
            "currency": subscription["currency"],
            "total": total,
            "amount_due": max(0, total),
            "amount_paid": max(0, total),
            "attempt_count": 1,
            "billing_reason": "subscription_update",
            "created": at,
            "status_transitions": {"paid_at": at},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": subscription["id"],
                    "metadata": dict(subscription["metadata"]),
                },
            },
            "lines": {"object": "list", "data": lines},
        }
        self.invoices[invoice["id"]] = invoice
        if invoice["amount_paid"]:
            self._pay_invoice(invoice)
        self.emit("invoice.paid", invoice, at=at)

    def _preview(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """`POST /v1/invoices/create_preview` for a subscription change: the proration it would invoice."""
        subscription = self.subscriptions.get(params.get("subscription", ""))
        if subscription is None:
            return 400, {
                "type": "invalid_request_error",
                "message": f"No such subscription: '{params.get('subscription')}'",
                "param": "subscription",
            }
        details = params.get("subscription_details") or {}
        status, changed = self._changed_items(subscription, details.get("items") or [])
        if status != 200:
            return status, changed
        at = int(details.get("proration_date") or self.now())
        lines, reset = self._prorations(subscription, changed["items"], at)
        total = sum(line["amount"] for line in lines)
        return 200, {
            "id": None,
            "object": "invoice",
            "status": "draft",
            "currency": subscription["currency"],
            "subscription_proration_date": at,
            "total": total,
            "amount_due": max(0, total),
            "lines": {"object": "list", "data": lines},
        }

    def _schedule(self, schedule_id: str | None, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Subscription schedules: create one `from_subscription` (one phase: the current period), or update
        its phases (`phases[n][items][m][price|price_data|quantity]`, `start_date`, `end_date`, `duration`)."""
        if schedule_id is None:
            subscription = self.subscriptions.get(params.get("from_subscription", ""))
            if subscription is None:
                return 400, {"type": "invalid_request_error", "message": "No such subscription"}
            if subscription.get("schedule"):
                return 400, {
                    "type": "invalid_request_error",
                    "message": "You cannot migrate a subscription that is already attached to a schedule",
                }
            first = subscription["items"]["data"][0]
            schedule = {
                "id": "sub_sched_" + secrets.token_hex(10),
                "object": "subscription_schedule",
                "status": "active",
                "subscription": subscription["id"],
                "end_behavior": "release",
                "phases": [
                    {
                        "start_date": first["current_period_start"],
                        "end_date": first["current_period_end"],
                        "items": [
                            {"price": i["price"]["id"], "price_object": i["price"], "quantity": i["quantity"]}
                            for i in subscription["items"]["data"]
                        ],
                    }
                ],
            }
            self.schedules[schedule["id"]] = schedule
            subscription["schedule"] = schedule["id"]
            return 200, self._public_schedule(schedule)
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            return 404, {
                "type": "invalid_request_error",
                "message": f"No such subscription_schedule: '{schedule_id}'",
            }
        prices = {i["price_object"]["id"]: i["price_object"] for p in schedule["phases"] for i in p["items"]}
        subscription = self.subscriptions.get(schedule.get("subscription") or "")
        for sub_item in (
            (subscription or {}).get("items", {}).get("data", [])
        ):  # its prices now (after a swap)
            prices.setdefault(sub_item["price"]["id"], sub_item["price"])
        phases = []
        for phase in params.get("phases") or []:
            items = []
            for item in phase.get("items") or []:
                if "price_data" in item:
                    price = self._price(item["price_data"])
                elif item.get("price") in prices:
                    price = prices[item["price"]]
                else:
                    return 400, {
                        "type": "invalid_request_error",
                        "message": "No such price",
                        "param": "phases",
                    }
                items.append(
                    {"price": price["id"], "price_object": price, "quantity": int(item.get("quantity", 1))}
                )
            phases.append(
                {
                    "start_date": int(phase.get("start_date") or 0) or None,
                    "end_date": phase.get("end_date"),
                    "items": items,
                }
            )
        if not phases:
            return 400, {"type": "invalid_request_error", "message": "phases is required", "param": "phases"}
        schedule["phases"] = phases
        schedule["end_behavior"] = params.get("end_behavior", schedule["end_behavior"])
        return 200, self._public_schedule(schedule)

    def _release(self, schedule_id: str) -> tuple[int, dict[str, Any]]:
        """`POST /v1/subscription_schedules/{id}/release`: the subscription goes on as it is, unscheduled."""
        schedule = self.schedules.get(schedule_id)
        if schedule is None or schedule["status"] != "active":
            return 400, {
                "type": "invalid_request_error",
                "message": f"No active subscription_schedule: '{schedule_id}'",
            }
        subscription = self.subscriptions[schedule["subscription"]]
        subscription["schedule"] = None
        schedule.update(status="released", released_subscription=subscription["id"], subscription=None)
        return 200, self._public_schedule(schedule)

    @staticmethod
    def _public_schedule(schedule: dict[str, Any]) -> dict[str, Any]:
        return {
            **schedule,
            "phases": [
                {**p, "items": [{"price": i["price"], "quantity": i["quantity"]} for i in p["items"]]}
                for p in schedule["phases"]
            ],
        }

    def _portal(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        customer = params.get("customer")
        if not customer or not any(s["customer"] == customer for s in self.subscriptions.values()):
            return 400, {
                "type": "invalid_request_error",
                "message": f"No such customer: '{customer}'",
                "param": "customer",
            }
        portal_id = "bps_" + secrets.token_hex(12)
        session = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": customer,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/test_{portal_id}",
            "livemode": False,
            "created": self.now(),
        }
        self.portal_sessions[portal_id] = session
        return 200, session

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        sub_match = re.fullmatch(r"/v1/subscriptions/([^/]+)", path)
        if sub_match:
            status, body = self._subscription(method, sub_match.group(1), params)
            return status, self._public_sub(body) if status == 200 else body
        if method == "POST" and path == "/v1/invoices/create_preview":
            return self._preview(params)
        release = re.fullmatch(r"/v1/subscription_schedules/([^/]+)/release", path)
        if method == "POST" and release:
            return self._release(release.group(1))
        schedule = re.fullmatch(r"/v1/subscription_schedules(?:/([^/]+))?", path)
        if method == "POST" and schedule:
            return self._schedule(schedule.group(1), params)
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return self._portal(params)
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
