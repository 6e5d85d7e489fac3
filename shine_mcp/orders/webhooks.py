"""Stripe webhook events (or the simulated gateway's, signed the same way) → order state machine events.

`handle` verifies the signature, finds the order the event is about, and applies it through the ledger
with the event id recorded in the same transaction: a replay is a no-op, and the answer (2xx) is only
given after the change is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shine_mcp.integrations.payments import CheckoutSession, PaymentGateway
from shine_mcp.money import from_stripe_amount
from shine_mcp.orders import machine
from shine_mcp.orders.checkout import session_event
from shine_mcp.orders.ledger import Ledger
from shine_mcp.orders.subscriptions import EVENTS as SUBSCRIPTION_EVENTS
from shine_mcp.orders.subscriptions import Outcome, SubscriptionEvents
from shine_mcp.store.db import Database
from shine_mcp.store.orders import OrderFinder

log = logging.getLogger("shine.payments")

HANDLED = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "charge.refunded",
        "charge.dispute.created",
    }
)


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    type: str
    outcome: str  # applied | duplicate | ignored | unknown_order
    order_id: str | None = None
    status: str | None = None


def _object(event: Mapping[str, Any]) -> dict[str, Any]:
    return dict((event.get("data") or {}).get("object") or {})


def _intent_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _finder(type_: str, obj: Mapping[str, Any]) -> OrderFinder:
    """How the event's order is found inside the ledger's unit of work (the same transaction that applies
    the event, so finding it costs no round trips of its own)."""
    metadata = obj.get("metadata") or {}
    tries: list[tuple[str, str]] = []
    if type_.startswith("checkout.session."):
        candidate = obj.get("client_reference_id") or metadata.get("order_id")
        tries += [("id", str(candidate))] if candidate else []
        tries += [("checkout_session_id", str(obj["id"]))] if obj.get("id") else []
    else:
        intent = _intent_id(obj.get("payment_intent"))
        tries += [("payment_intent_id", intent)] if intent else []
        # A refund or dispute can outrun the payment's own event: the payment carries the order id.
        tries += [("id", str(metadata["order_id"]))] if metadata.get("order_id") else []
    return OrderFinder(tuple(tries))


class MembershipHook(Protocol):
    async def claims(self, type_: str, obj: Mapping[str, Any]) -> bool: ...

    async def handle(self, event_id: str, type_: str, obj: Mapping[str, Any], at: datetime) -> Outcome: ...


class Webhooks:
    def __init__(
        self,
        db: Database,
        gateway: Callable[[], PaymentGateway],
        ledger: Ledger,
        subscriptions: SubscriptionEvents | None = None,
    ) -> None:
        self._db, self._gateway, self._ledger = db, gateway, ledger
        self._subscriptions = subscriptions
        self.memberships: MembershipHook | None = None  # premium memberships' events go there

    async def handle(self, payload: bytes, signature: str | None) -> WebhookResult:
        """Raises `SignatureError` for an event that is not the provider's; anything else it could not
        store raises too, so the provider delivers it again later."""
        event = self._gateway().verify_event(payload, signature)
        event_id, type_ = str(event.get("id") or ""), str(event.get("type") or "")
        at = datetime.fromtimestamp(int(event.get("created") or 0), UTC)
        obj = _object(event)
        if self._subscriptions is not None and (
            type_ in SUBSCRIPTION_EVENTS
            or (type_.startswith("checkout.session.") and obj.get("mode") == "subscription")
        ):
            if type_ != "checkout.session.completed" and type_ not in SUBSCRIPTION_EVENTS:
                # An unpaid subscription session expired or failed: no subscription started, nothing to do.
                return WebhookResult(event_id, type_, "ignored")
            if self.memberships is not None and await self.memberships.claims(type_, obj):
                done = await self.memberships.handle(event_id, type_, obj, at)
            else:
                done = await self._subscriptions.handle(event_id, type_, obj, at)
            outcome = "unknown_order" if done.outcome == "unknown_subscription" else done.outcome
            return WebhookResult(event_id, type_, outcome, done.order_id, done.status)
        if type_ not in HANDLED:
            return WebhookResult(event_id, type_, "ignored")
        applied = await self._ledger.apply_found(
            _finder(type_, obj), self._event(type_, obj, at), dedupe=("stripe", event_id, type_)
        )
        order = applied.order
        if order is None:
            log.info("webhook %s (%s) names no order of this shop; ignored", event_id, type_)
            return WebhookResult(event_id, type_, "unknown_order")
        if applied.duplicate:
            return WebhookResult(event_id, type_, "duplicate", order.id)
        return WebhookResult(event_id, type_, "applied", order.id, order.status)

    def _event(self, type_: str, obj: Mapping[str, Any], at: datetime) -> machine.Event:
        if type_ == "checkout.session.completed":
            session = CheckoutSession.of(obj)
            return session_event(session, at) or machine.PaymentProcessing(
                at=at,
                payment_intent=session.payment_intent,
                session_id=session.id,
                email=session.customer_email,
                shipping=session.shipping,
            )
        if type_ == "checkout.session.async_payment_succeeded":
            session = CheckoutSession.of({**obj, "status": "complete", "payment_status": "paid"})
            event = session_event(session, at)
            assert event is not None
            return event
        if type_ == "checkout.session.async_payment_failed":
            return machine.PaymentFailed(at=at)
        if type_ == "checkout.session.expired":
            return machine.Expired(at=at)
        if type_ == "charge.refunded":
            refunded = int(obj.get("amount_refunded") or 0)
            total = from_stripe_amount(refunded, str(obj.get("currency") or ""))
            return machine.Refunded(at=at, total_refunded=total)
        if type_ == "charge.dispute.created":
            return machine.Disputed(at=at, reason=obj.get("reason"))
        raise AssertionError(f"unhandled {type_}")
