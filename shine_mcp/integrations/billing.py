"""Recurring payments (Stripe Billing) behind one small interface, `Billing`, beside `PaymentGateway`:

- `StripeBilling`: Checkout Sessions in `mode=subscription` with prices recurring every N weeks (refills) or
  every month or year (premium), and subscriptions retrieved and updated (pause, skip, quantity, interval,
  a prorated price change, cancel at period end), proration previews (`invoices.create_preview`), a change
  from the period's end (a subscription schedule) and customer-portal links, through the real `stripe` SDK;
- `SimulatedBilling`: the same without Stripe: sessions paid on the simulated checkout page, subscriptions
  kept in the database, and a simulated clock (`advance`, what `shine subscriptions advance` runs) that bills
  the subscriptions that fall due, sending Stripe-shaped events signed like Stripe's to the webhook handler.

Subscription rules (statuses, orders from invoices) live in `shine_mcp.orders.subscriptions`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import stripe

from shine_mcp.clock import utcnow
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
from shine_mcp.integrations.proration import Proration, period_end, prorate
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
    interval_weeks: int  # the period in weeks (for interval="week"; a month or a year is always one)
    success_url: str
    cancel_url: str
    customer_email: str | None = None
    shipping_countries: tuple[str, ...] = ()
    interval: str = "week"  # week | month | year (premium membership plans)
    metadata_key: str = METADATA_KEY  # the name Shine's id goes under: subscription_id | membership_id

    @property
    def recurring(self) -> dict[str, Any]:
        count = self.interval_weeks if self.interval == "week" else 1
        return {"interval": self.interval, "interval_count": count}

    @property
    def amount_total(self) -> int:
        return sum(line.unit_amount * line.quantity for line in self.lines)

    def params(self) -> dict[str, Any]:
        """The `POST /v1/checkout/sessions` parameters."""
        metadata = {self.metadata_key: self.subscription_id}
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [
                {
                    "price_data": {
                        "currency": self.currency.lower(),
                        "unit_amount": stripe_amount(line.unit_amount, self.currency),
                        "product_data": {"name": line.name, "metadata": {"product_id": line.product_id}},
                        "recurring": self.recurring,
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

    async def preview_change(
        self, provider_id: str, items: list[dict[str, Any]], proration_date: int
    ) -> dict[str, Any]:
        """The invoice a change of `items` at `proration_date` would make with `always_invoice` (Stripe's
        `invoices.create_preview`): its `total`, `amount_due` and proration `lines`."""
        ...

    async def change_at_period_end(
        self, provider_id: str, items: list[dict[str, Any]], *, idempotency_key: str
    ) -> dict[str, Any]:
        """From the end of the current period on, the items become `items` (Stripe: a subscription schedule made
        from the subscription, whose next phase has the new prices and then releases it). Returns the
        subscription object."""
        ...

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        """A link to the page where the customer manages their payment methods (Stripe's customer portal)."""
        ...

    async def release_schedule(self, provider_id: str) -> None:
        """Drop a change booked for the period's end (release the subscription's schedule), if there is one."""
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


def price_items(
    subscription: Mapping[str, Any],
    unit_amount: int,
    recurring: Mapping[str, Any],
    product: str | None = None,
) -> list[dict[str, Any]]:
    """Every item's new price (`items[n][price_data]`): `unit_amount` (Stripe's units) every `recurring`, for
    the same product unless `product` names another one."""
    items = []
    for item in items_of(subscription):
        price = item.get("price") or {}
        data = {
            "currency": price.get("currency"),
            "product": product or price.get("product"),
            "unit_amount": unit_amount,
            "recurring": dict(recurring),
        }
        items.append({"id": item["id"], "price_data": data, "quantity": item.get("quantity") or 1})
    return items


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

    async def preview_change(
        self, provider_id: str, items: list[dict[str, Any]], proration_date: int
    ) -> dict[str, Any]:
        params = {
            "subscription": provider_id,
            "subscription_details": {
                "items": items,
                "proration_behavior": "always_invoice",
                "proration_date": proration_date,
            },
        }
        try:
            preview = await self._client.v1.invoices.create_preview_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return preview.to_dict()

    async def change_at_period_end(
        self, provider_id: str, items: list[dict[str, Any]], *, idempotency_key: str
    ) -> dict[str, Any]:
        current = await self.retrieve_subscription(provider_id)
        schedules = self._client.v1.subscription_schedules
        try:
            schedule_id = _id_of(current.get("schedule"))
            if schedule_id is None:
                made = await schedules.create_async(
                    {"from_subscription": provider_id},
                    options={"idempotency_key": f"{idempotency_key}-schedule"},
                )
                schedule_id = made.id
            now = items_of(current)[0]
            phases = [
                {
                    "items": [
                        {"price": _id_of(i.get("price")), "quantity": i.get("quantity") or 1}
                        for i in items_of(current)
                    ],
                    "start_date": now["current_period_start"],
                    "end_date": now["current_period_end"],
                },
                {
                    "items": [{"price_data": i["price_data"], "quantity": i["quantity"]} for i in items],
                    "duration": {
                        "interval": items[0]["price_data"]["recurring"]["interval"],
                        "interval_count": items[0]["price_data"]["recurring"].get("interval_count", 1),
                    },
                },
            ]
            await schedules.update_async(
                schedule_id,
                {"phases": phases, "end_behavior": "release"},  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return await self.retrieve_subscription(provider_id)

    async def release_schedule(self, provider_id: str) -> None:
        schedule_id = _id_of((await self.retrieve_subscription(provider_id)).get("schedule"))
        if schedule_id is None:
            return
        try:
            await self._client.v1.subscription_schedules.release_async(schedule_id)
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        try:
            portal = await self._client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url}
            )
        except stripe.StripeError as exc:
            raise payment_error(exc) from exc
        return str(portal.url)


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


# --- the simulated billing ---------------------------------------------------------------------------------
class SimulatedClock:
    """Real time plus an offset the merchant moves forward (`shine subscriptions advance --days 30`), kept in
    a file of SHINE_DATA_DIR so the CLI and the running server agree."""

    def __init__(self, path: Path, real: Callable[[], datetime] = utcnow) -> None:
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


def _changed(
    items: list[dict[str, Any]], changes: Sequence[Mapping[str, Any]]
) -> list[tuple[dict[str, Any], int]]:
    """The (price, quantity) of each item after `items[n][id|quantity|price_data]` changes."""
    after = {item["id"]: (dict(item["price"]), int(item["quantity"])) for item in items}
    for change in changes:
        price, quantity = after[change["id"]]
        if "quantity" in change:
            quantity = int(change["quantity"])
        if "price_data" in change:
            data = change["price_data"]
            price = {
                "unit_amount": int(data["unit_amount"]),
                "currency": data["currency"],
                "product": data["product"],
                "recurring": {
                    "interval": data["recurring"]["interval"],
                    "interval_count": int(data["recurring"].get("interval_count", 1)),
                },
            }
        after[change["id"]] = (price, quantity)
    return [after[item["id"]] for item in items]


def portal_token(customer_id: str, secret: str) -> str:
    """The simulated portal page's address part: the customer id and a signature, so only Shine's links open
    it."""
    digest = hmac.new(secret.encode(), f"portal:{customer_id}".encode(), hashlib.sha256).hexdigest()[:24]
    return f"{customer_id}.{digest}"


def portal_customer(token: str, secret: str) -> str | None:
    """The customer a simulated portal token was made for, or None when it was not made by Shine."""
    customer, _, _ = token.partition(".")
    return customer if customer and hmac.compare_digest(portal_token(customer, secret), token) else None


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
                            "recurring": request.recurring,
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
        recurring = session["line_items"]["data"][0]["price"]["recurring"]
        provider_id = "sub_sim_" + hashlib.sha256(session["id"].encode()).hexdigest()[:20]
        end = datetime.fromtimestamp(period_end(_stamp(now), recurring), UTC)
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
            first = await self._paid(
                self._invoice(data, 1, "paid", _stamp(now), _stamp(now), _stamp(end)), now
            )
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
        invoice = await self._paid(self._invoice(data, number, "paid", at, start, end), moment)
        await self._send("invoice.paid", invoice, f"evt_sim_paid_{invoice['id']}", moment)
        await self._send("customer.subscription.updated", data, f"evt_sim_subu_{data['id']}_{at}", moment)
        return data

    async def _paid(self, invoice: dict[str, Any], moment: datetime) -> dict[str, Any]:
        """A paid invoice's payment: kept like a paid simulated session, so refunding the order it became
        refunds it (`SimulatedGateway.refund`); named in the invoice's `payments` as newer Stripe API versions do."""
        intent = "pi_sim_" + hashlib.sha256(str(invoice["id"]).encode()).hexdigest()[:24]
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
        if not invoice["amount_paid"]:
            return invoice
        record = {
            "id": "cs_sim_invoice_" + str(invoice["id"]).removeprefix("in_sim_"),
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": "paid",
            "payment_intent": intent,
            "amount_total": invoice["amount_paid"],
            "amount_refunded": 0,
            "refunds": [],
            "currency": invoice["currency"],
            "client_reference_id": None,
            "metadata": {},
        }
        shine_id = next(iter((invoice["parent"]["subscription_details"]["metadata"] or {}).values()), "")
        stored = await self.gateway.ledger.add(
            record, idempotency_key=f"invoice-{invoice['id']}", user_id=str(shine_id), expires_at=moment
        )
        if stored.get("payment_intent") == intent:
            await self.gateway.ledger.save(stored)  # indexes its payment intent
        return invoice

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
            scheduled = data.pop("scheduled_items", None)
            if scheduled:  # a change booked for the period's end (a subscription schedule's next phase)
                for item, (price, quantity) in zip(items, scheduled, strict=True):
                    item["price"], item["quantity"] = price, quantity
                data["schedule"] = None
            pause = data.get("pause_collection")
            next_end = period_end(end, items[0]["price"]["recurring"])
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
        now = self.clock()
        at = int(params.get("proration_date") or _stamp(now))
        items = items_of(data)
        after = _changed(items, params.get("items") or [])
        behavior = params.get("proration_behavior", "create_prorations")
        proration = prorate(items, after, at)
        resets = proration.resets_period
        if behavior == "none":  # no credit for unused time; a reset's new period is still charged in full
            kept = tuple(line for line in proration.lines if resets and line.amount > 0)
            proration = Proration(kept, resets)
        if proration.lines and behavior == "create_prorations" and not resets:
            raise PaymentError(
                "the simulated payments invoice prorations at once or not at all", retryable=False
            )
        for item, (price, quantity) in zip(items, after, strict=True):
            item["price"], item["quantity"] = price, quantity
            # Another billing period resets the billing cycle, as Stripe's does whatever the proration
            # behaviour: a new period starts now and is invoiced at once.
            if resets:
                item["current_period_start"], item["current_period_end"] = (
                    at,
                    period_end(at, price["recurring"]),
                )
        await self.store.save(data)
        if proration.lines and (behavior == "always_invoice" or resets):
            await self._prorations_paid(data, proration, at, idempotency_key)
        await self._send(
            "customer.subscription.updated", data, f"evt_sim_subu_{provider_id}_{idempotency_key}", now
        )
        return data

    async def _prorations_paid(self, data: dict[str, Any], proration: Proration, at: int, key: str) -> None:
        """`always_invoice`: the prorations invoiced and paid at once (a net credit charges nothing)."""
        invoice = {
            **self._invoice(data, 0, "paid", at, at, at),
            "id": f"in_sim_{data['id'][8:]}_u{hashlib.sha256(key.encode()).hexdigest()[:10]}",
            "billing_reason": "subscription_update",
            "total": proration.total,
            "amount_due": proration.amount_due,
            "amount_paid": proration.amount_due,
        }
        invoice["lines"] = {
            "object": "list",
            "data": [
                {
                    "object": "line_item",
                    "amount": line.amount,
                    "description": line.description,
                    "period": {"start": line.start, "end": line.end},
                    "metadata": dict(data["metadata"]),
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {"proration": True, "subscription_item": line.item_id},
                    },
                }
                for line in proration.lines
            ],
        }
        moment = datetime.fromtimestamp(at, UTC)
        invoice = await self._paid(invoice, moment)
        await self._send("invoice.paid", invoice, f"evt_sim_paid_{invoice['id']}", moment)

    async def preview_change(
        self, provider_id: str, items: list[dict[str, Any]], proration_date: int
    ) -> dict[str, Any]:
        data = await self.retrieve_subscription(provider_id)
        current = items_of(data)
        proration = prorate(current, _changed(current, items), proration_date)
        return {
            "object": "invoice",
            "status": "draft",
            "currency": data["currency"],
            "subscription_proration_date": proration_date,
            "total": proration.total,
            "amount_due": proration.amount_due,
            "lines": {
                "object": "list",
                "data": [
                    {
                        "amount": line.amount,
                        "description": line.description,
                        "period": {"start": line.start, "end": line.end},
                    }
                    for line in proration.lines
                ],
            },
        }

    async def change_at_period_end(
        self, provider_id: str, items: list[dict[str, Any]], *, idempotency_key: str
    ) -> dict[str, Any]:
        data = await self.retrieve_subscription(provider_id)
        if data["status"] == "canceled":
            raise PaymentError("this subscription has ended", retryable=False, status=400)
        data["scheduled_items"] = _changed(items_of(data), items)
        data["schedule"] = "sub_sched_sim_" + data["id"][8:]
        await self.store.save(data)
        await self._send(
            "customer.subscription.updated",
            data,
            f"evt_sim_subu_{provider_id}_{idempotency_key}",
            self.clock(),
        )
        return data

    async def release_schedule(self, provider_id: str) -> None:
        data = await self.retrieve_subscription(provider_id)
        if data.pop("scheduled_items", None) is not None:
            data["schedule"] = None
            await self.store.save(data)

    async def customer_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        return [d for d in await self.store.all() if d.get("customer") == customer_id]

    async def card_updated(self, customer_id: str) -> int:
        """The simulated portal's "use another card": the customer's declined charges are tried again at once
        (and paid), as Stripe retries an open invoice when the payment method changes. Returns how many."""
        paid = 0
        for data in await self.customer_subscriptions(customer_id):
            data.pop("fail_next_charge", None)
            await self.store.save(data)
            retry = data.get("open_invoice")
            if retry and data["status"] != "canceled":
                await self._bill(data, self.clock(), int(retry["start"]), int(retry["end"]))
                paid += 1
        return paid

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        """The simulated payment-methods page (no card is stored anywhere: it says so)."""
        return f"{self.gateway.base_url}/simulated-portal/{portal_token(customer_id, self.gateway.webhook_secret)}"

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
