"""Recurring payments (Stripe Billing) behind one small interface, `Billing`, beside `PaymentGateway`:

- `StripeBilling`: Checkout Sessions in `mode=subscription` with prices recurring every N weeks, and
  subscriptions retrieved and updated (pause, skip, quantity, interval, cancel at period end) through the
  real `stripe` SDK;
- `SimulatedBilling`: the same without Stripe: sessions paid on the simulated checkout page, subscriptions
  kept in the database, and a simulated clock (`advance`, what `shine subscriptions advance` runs) that bills
  the subscriptions that fall due, sending Stripe-shaped events signed like Stripe's to the webhook handler.

Subscription rules (statuses, orders from invoices) live in `shine_mcp.orders.subscriptions`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import stripe

from shine_mcp.integrations.payments import (
    EVENT_API_VERSION,
    SIMULATED_PREFIX,
    CheckoutSession,
    EventSink,
    LineItem,
    PaymentError,
    SimulatedGateway,
    payment_error,
    sign_payload,
)
from shine_mcp.money import stripe_amount
from shine_mcp.store.subscriptions import SimulatedSubscriptions

METADATA_KEY = "subscription_id"


@dataclass(frozen=True)
class SubscriptionRequest:
    """One subscription Checkout Session, built only from a stored subscription (a retry sends the same)."""

    subscription_id: str
    user_id: str
    currency: str
    lines: tuple[LineItem, ...]  # unit amounts after the discount, charged every period
    interval_weeks: int
    success_url: str
    cancel_url: str
    customer_email: str | None = None
    shipping_countries: tuple[str, ...] = ()

    @property
    def amount_total(self) -> int:
        return sum(line.unit_amount * line.quantity for line in self.lines)

    def params(self) -> dict[str, Any]:
        """The `POST /v1/checkout/sessions` parameters."""
        metadata = {METADATA_KEY: self.subscription_id}
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [
                {
                    "price_data": {
                        "currency": self.currency.lower(),
                        "unit_amount": stripe_amount(line.unit_amount, self.currency),
                        "product_data": {"name": line.name, "metadata": {"product_id": line.product_id}},
                        "recurring": {"interval": "week", "interval_count": self.interval_weeks},
                    },
                    "quantity": line.quantity,
                }
                for line in self.lines
            ],
            "client_reference_id": self.subscription_id,
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
        }
        if self.customer_email:
            params["customer_email"] = self.customer_email
        if self.shipping_countries:
            params["shipping_address_collection"] = {"allowed_countries": list(self.shipping_countries)}
        return params


class Billing(Protocol):
    async def create_subscription_session(
        self, request: SubscriptionRequest, *, idempotency_key: str
    ) -> CheckoutSession: ...

    async def retrieve_subscription(self, provider_id: str) -> dict[str, Any]:
        """The provider's subscription object (Stripe's wire format)."""
        ...

    async def update_subscription(
        self, provider_id: str, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """`POST /v1/subscriptions/{id}` with Stripe's parameters; returns the updated object."""
        ...

    async def cancel_now(self, provider_id: str) -> dict[str, Any]:
        """`DELETE /v1/subscriptions/{id}`: ends it at once (no more invoices); an ended one comes back as is."""
        ...


def items_of(subscription: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(((subscription.get("items") or {}).get("data")) or [])


def interval_params(subscription: Mapping[str, Any], weeks: int) -> dict[str, Any]:
    """Every item's price recurring every `weeks` weeks (same product and amount), without proration."""
    items = []
    for item in items_of(subscription):
        price = item.get("price") or {}
        items.append(
            {
                "id": item["id"],
                "price_data": {
                    "currency": price.get("currency"),
                    "product": price.get("product"),
                    "unit_amount": price.get("unit_amount"),
                    "recurring": {"interval": "week", "interval_count": weeks},
                },
            }
        )
    return {"items": items, "proration_behavior": "none"}


def quantity_params(subscription: Mapping[str, Any], quantity: int) -> dict[str, Any]:
    """A new quantity for the subscription's product (one product per subscription), without proration."""
    items = [{"id": item["id"], "quantity": quantity} for item in items_of(subscription)]
    return {"items": items, "proration_behavior": "none"}


# --- Stripe ---------------------------------------------------------------------------------------------
class StripeBilling:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def create_subscription_session(
        self, request: SubscriptionRequest, *, idempotency_key: str
    ) -> CheckoutSession:
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                request.params(),  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return CheckoutSession.of(session.to_dict())

    async def retrieve_subscription(self, provider_id: str) -> dict[str, Any]:
        try:
            found = await self._client.v1.subscriptions.retrieve_async(provider_id)
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return found.to_dict()

    async def update_subscription(
        self, provider_id: str, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        try:
            updated = await self._client.v1.subscriptions.update_async(
                provider_id,
                dict(params),  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return updated.to_dict()

    async def cancel_now(self, provider_id: str) -> dict[str, Any]:
        try:
            ended = await self._client.v1.subscriptions.cancel_async(provider_id)
        except stripe.InvalidRequestError:
            return await self.retrieve_subscription(provider_id)  # already canceled
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return ended.to_dict()


# --- the simulated billing ---------------------------------------------------------------------------------
class SimulatedClock:
    """Real time plus an offset the merchant moves forward (`shine subscriptions advance --days 30`), kept in
    a file of SHINE_DATA_DIR so the CLI and the running server agree."""

    def __init__(self, path: Path, real: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._path, self._real = path, real

    def offset(self) -> timedelta:
        try:
            return timedelta(seconds=float(json.loads(self._path.read_text())["offset_seconds"]))
        except (OSError, ValueError, KeyError, TypeError):
            return timedelta(0)

    def advance(self, delta: timedelta) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        total = (self.offset() + delta).total_seconds()
        self._path.write_text(json.dumps({"offset_seconds": total}))

    def __call__(self) -> datetime:
        return self._real() + self.offset()


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass
class SimulatedBilling:
    """Subscriptions of the simulated gateway. Events go through `gateway.deliver` (the webhook handler)."""

    gateway: SimulatedGateway
    store: SimulatedSubscriptions
    clock: SimulatedClock
    deliver: EventSink | None = None

    async def create_subscription_session(
        self, request: SubscriptionRequest, *, idempotency_key: str
    ) -> CheckoutSession:
        now = self.clock()
        params = request.params()
        session_id = SIMULATED_PREFIX + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
        expires = now + self.gateway.session_ttl
        data = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"{self.gateway.base_url}/simulated-checkout/{session_id}",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": request.amount_total,
            "amount_total": request.amount_total,
            "currency": request.currency.lower(),
            "client_reference_id": request.subscription_id,
            "metadata": params["metadata"],
            "customer_email": request.customer_email,
            "customer_details": None,
            "payment_intent": None,
            "subscription": None,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "created": _stamp(now),
            "expires_at": _stamp(expires),
            "livemode": False,
            "shipping_address_collection": params.get("shipping_address_collection"),
            "line_items": {
                "object": "list",
                "data": [
                    {
                        "description": line.name,
                        "quantity": line.quantity,
                        "amount_total": stripe_amount(line.unit_amount, request.currency) * line.quantity,
                        "price": {
                            "unit_amount": stripe_amount(line.unit_amount, request.currency),
                            "currency": request.currency.lower(),
                            "product": "prod_sim_" + line.product_id,
                            "recurring": {"interval": "week", "interval_count": request.interval_weeks},
                            "metadata": {"product_id": line.product_id},
                        },
                    }
                    for line in request.lines
                ],
            },
            "amount_refunded": 0,
            "refunds": [],
        }
        stored = await self.gateway.ledger.add(
            data, idempotency_key=idempotency_key, user_id=request.user_id, expires_at=expires
        )
        if (
            stored["client_reference_id"] != request.subscription_id
            or stored["amount_total"] != request.amount_total
        ):
            raise PaymentError(
                "the idempotency key was already used with different parameters", retryable=False, status=400
            )
        return CheckoutSession.of(stored)

    async def started(self, session: dict[str, Any]) -> None:
        """The simulated page's Pay on a subscription session: the subscription starts and its first invoice
        is paid (`SimulatedGateway.pay` calls this after the session completed; calling it again re-sends)."""
        now = self.clock()
        weeks = int(session["line_items"]["data"][0]["price"]["recurring"]["interval_count"])
        provider_id = "sub_sim_" + hashlib.sha256(session["id"].encode()).hexdigest()[:20]
        end = now + timedelta(weeks=weeks)
        data = {
            "id": provider_id,
            "object": "subscription",
            "status": "active",
            "customer": "cus_sim_" + hashlib.sha256(session["id"].encode()).hexdigest()[:14],
            "metadata": dict(session["metadata"]),
            "cancel_at_period_end": False,
            "pause_collection": None,
            "created": _stamp(now),
            "start_date": _stamp(now),
            "ended_at": None,
            "currency": session["currency"],
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": f"si_sim_{provider_id[8:]}_{i}",
                        "object": "subscription_item",
                        "quantity": line["quantity"],
                        "price": {k: v for k, v in line["price"].items() if k != "metadata"},
                        "metadata": dict(line["price"].get("metadata") or {}),
                        "current_period_start": _stamp(now),
                        "current_period_end": _stamp(end),
                    }
                    for i, line in enumerate(session["line_items"]["data"])
                ],
            },
            "invoice_count": 0,
            "open_invoice": None,
        }
        data = await self.store.add(data)
        await self._send("customer.subscription.created", data, f"evt_sim_subc_{provider_id}", now)
        if data["invoice_count"] == 0:
            data = await self._bill(data, now, _stamp(now), _stamp(end))
        else:  # a second Pay: send the first invoice again, as Stripe re-delivers
            first = self._invoice(data, 1, "paid", _stamp(now), _stamp(now), _stamp(end))
            await self._send("invoice.paid", first, f"evt_sim_paid_{first['id']}", now)

    def _invoice(
        self, data: Mapping[str, Any], number: int, status: str, at: int, start: int, end: int
    ) -> dict[str, Any]:
        items = items_of(data)
        amount = sum(int(i["price"]["unit_amount"]) * int(i["quantity"]) for i in items)
        return {
            "id": f"in_sim_{data['id'][8:]}_{number}",
            "object": "invoice",
            "status": status,
            "customer": data["customer"],
            "currency": data["currency"],
            "amount_due": amount,
            "amount_paid": amount if status == "paid" else 0,
            "billing_reason": "subscription_create" if number == 1 else "subscription_cycle",
            "created": at,
            "status_transitions": {"paid_at": at if status == "paid" else None},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": data["id"], "metadata": dict(data["metadata"])},
            },
            "lines": {
                "object": "list",
                "data": [
                    {
                        "object": "line_item",
                        "amount": int(i["price"]["unit_amount"]) * int(i["quantity"]),
                        "quantity": i["quantity"],
                        "period": {"start": start, "end": end},
                        "metadata": dict(data["metadata"]),
                    }
                    for i in items
                ],
            },
        }

    async def _bill(self, data: dict[str, Any], moment: datetime, start: int, end: int) -> dict[str, Any]:
        """Charge one period: paid (the items' period moves on) or failed (past due; retried on the next
        advance)."""
        number = int(data["invoice_count"]) + (0 if data.get("open_invoice") else 1)
        at = _stamp(moment)
        if data.pop("fail_next_charge", False):
            data.update(status="past_due", open_invoice={"number": number, "start": start, "end": end})
            data["invoice_count"] = number
            await self.store.save(data)
            invoice = self._invoice(data, number, "open", at, start, end)
            await self._send("invoice.payment_failed", invoice, f"evt_sim_fail_{invoice['id']}_{at}", moment)
            await self._send("customer.subscription.updated", data, f"evt_sim_subu_{data['id']}_{at}", moment)
            return data
        for item in items_of(data):
            item["current_period_start"], item["current_period_end"] = start, end
        data.update(status="active", open_invoice=None, invoice_count=number)
        await self.store.save(data)
        invoice = self._invoice(data, number, "paid", at, start, end)
        await self._send("invoice.paid", invoice, f"evt_sim_paid_{invoice['id']}", moment)
        await self._send("customer.subscription.updated", data, f"evt_sim_subu_{data['id']}_{at}", moment)
        return data

    async def fail_next_charge(self, provider_id: str) -> None:
        """The subscription's next charge is declined (to try the past-due path: `shine subscriptions
        advance --decline <id>`)."""
        data = await self.retrieve_subscription(provider_id)
        data["fail_next_charge"] = True
        await self.store.save(data)

    async def advance(self, delta: timedelta) -> int:
        """Move the simulated clock on and bill every subscription that fell due (period by period); returns
        how many invoices were sent."""
        self.clock.advance(delta)
        now, sent = self.clock(), 0
        for data in await self.store.all():
            sent += await self._catch_up(data, now)
        return sent

    async def _catch_up(self, data: dict[str, Any], now: datetime) -> int:
        sent = 0
        for _ in range(1000):
            if data["status"] == "canceled":
                return sent
            items = items_of(data)
            end = int(items[0]["current_period_end"])
            weeks = int(items[0]["price"]["recurring"]["interval_count"])
            if data.get("open_invoice"):  # retry the failed charge first, as Stripe's smart retries do
                retry = data["open_invoice"]
                data = await self._bill(data, now, int(retry["start"]), int(retry["end"]))
                sent += 1
                if data.get("open_invoice"):
                    return sent  # failed again: the next advance retries
                continue
            if end > _stamp(now):
                return sent
            moment = datetime.fromtimestamp(end, UTC)
            if data.get("cancel_at_period_end"):
                data.update(status="canceled", ended_at=end, canceled_at=end)
                await self.store.save(data)
                await self._send("customer.subscription.deleted", data, f"evt_sim_subd_{data['id']}", moment)
                return sent
            pause = data.get("pause_collection")
            next_end = end + int(timedelta(weeks=weeks).total_seconds())
            if pause and (not pause.get("resumes_at") or int(pause["resumes_at"]) > end):
                for item in items:  # a paused period: its invoice is voided, nothing is sent
                    item["current_period_start"], item["current_period_end"] = end, next_end
                await self.store.save(data)
                continue
            if pause:  # the skip is over
                data["pause_collection"] = None
            data = await self._bill(data, moment, end, next_end)
            sent += 1
            if data.get("open_invoice"):
                return sent  # the charge failed: retried on the next advance, as Stripe retries days later
        return sent

    async def retrieve_subscription(self, provider_id: str) -> dict[str, Any]:
        data = await self.store.get(provider_id)
        if data is None:
            raise PaymentError(f"no such subscription: {provider_id!r}", retryable=False, status=404)
        return data

    async def update_subscription(
        self, provider_id: str, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        data = await self.retrieve_subscription(provider_id)
        if data["status"] == "canceled":
            raise PaymentError("this subscription has ended", retryable=False, status=400)
        if "cancel_at_period_end" in params:
            data["cancel_at_period_end"] = bool(params["cancel_at_period_end"])
        if "pause_collection" in params:
            pause = params["pause_collection"]
            data["pause_collection"] = (
                {"behavior": pause["behavior"], "resumes_at": pause.get("resumes_at")} if pause else None
            )
        by_id = {item["id"]: item for item in items_of(data)}
        for change in params.get("items") or []:
            item = by_id[change["id"]]
            if "quantity" in change:
                item["quantity"] = int(change["quantity"])
            if "price_data" in change:
                price = change["price_data"]
                item["price"] = {
                    "unit_amount": int(price["unit_amount"]),
                    "currency": price["currency"],
                    "product": price["product"],
                    "recurring": dict(price["recurring"]),
                }
        await self.store.save(data)
        now = self.clock()
        await self._send(
            "customer.subscription.updated", data, f"evt_sim_subu_{provider_id}_{idempotency_key}", now
        )
        return data

    async def cancel_now(self, provider_id: str) -> dict[str, Any]:
        data = await self.retrieve_subscription(provider_id)
        if data["status"] != "canceled":
            now = self.clock()
            data.update(status="canceled", ended_at=_stamp(now), canceled_at=_stamp(now), open_invoice=None)
            await self.store.save(data)
            await self._send("customer.subscription.deleted", data, f"evt_sim_subd_{provider_id}", now)
        return data

    async def _send(self, type_: str, obj: Mapping[str, Any], event_id: str, moment: datetime) -> None:
        deliver = self.deliver or self.gateway.deliver
        if deliver is None:
            return
        event = {
            "id": event_id,
            "object": "event",
            "api_version": EVENT_API_VERSION,
            "created": _stamp(moment),
            "type": type_,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": dict(obj)},
        }
        payload = json.dumps(event, separators=(",", ":")).encode()
        await deliver(payload, sign_payload(payload, self.gateway.webhook_secret))
