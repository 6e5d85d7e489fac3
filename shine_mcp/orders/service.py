"""`Commerce`: carts, checkout, orders, refunds and webhooks for one running Shine, wired together.

The payment gateway is chosen once, from Settings: `STRIPE_SECRET_KEY` set → Stripe and no simulation
anywhere; unset → the simulated checkout, whose webhook secret is derived from the server key
(SHINE_SECRET_KEY, or the generated `secret.key` in SHINE_DATA_DIR), so it survives restarts and never
needs configuring.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime

from shine_mcp.auth.keys import derive, master_key
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.integrations.billing import Billing, SimulatedBilling, SimulatedClock, StripeBilling
from shine_mcp.integrations.payments import EventSink, PaymentGateway, SimulatedGateway, StripeGateway
from shine_mcp.orders.checkout import Checkout
from shine_mcp.orders.ledger import Ledger
from shine_mcp.orders.membership import MembershipEvents, Memberships
from shine_mcp.orders.refunds import Refunds
from shine_mcp.orders.subscribing import Subscriptions
from shine_mcp.orders.subscriptions import SubscriptionEvents
from shine_mcp.orders.webhooks import Webhooks
from shine_mcp.services import Services
from shine_mcp.store.db import Database
from shine_mcp.store.orders import SimulatedSessions
from shine_mcp.store.subscriptions import SimulatedSubscriptions


def simulated_webhook_secret(settings: Settings) -> str:
    key = derive(master_key(settings), "simulated-stripe-webhook")
    return "whsec_sim_" + base64.urlsafe_b64encode(key).decode().rstrip("=")


def uses_stripe(settings: Settings) -> bool:
    return bool(settings.stripe_secret_key and settings.stripe_secret_key.get_secret_value())


def build_gateway(settings: Settings, db: Database, deliver: EventSink) -> PaymentGateway:
    if uses_stripe(settings):
        assert settings.stripe_secret_key is not None
        webhook = settings.stripe_webhook_secret
        return StripeGateway(
            settings.stripe_secret_key.get_secret_value(),
            webhook.get_secret_value() if webhook else None,
            api_base=settings.stripe_api_base,
        )
    return SimulatedGateway(
        SimulatedSessions(db), simulated_webhook_secret(settings), settings.base_url, deliver=deliver
    )


class Commerce:
    def __init__(
        self,
        services: Services,
        *,
        gateway: PaymentGateway | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.services, self.settings = services, services.settings
        self._clock = clock
        self._given = gateway
        self._gateway: PaymentGateway | None = gateway
        self._listeners: list[Callable[[str], None]] = []
        db = self.db
        self.ledger = Ledger(
            db, callback_url=f"{self.settings.base_url}/fulfilment/callback", on_paid=self._paid, clock=clock
        )
        self.checkout = Checkout(db, self.gateway, self.ledger, self.settings, clock)
        self.refunds = Refunds(db, self.gateway, self.ledger, self.settings, clock)
        self._billing: Billing | None = None
        self.subscription_events = SubscriptionEvents(
            db,
            self.ledger,
            base_url=lambda: self.settings.base_url,
            gateway_kind=lambda: self.gateway().kind,
            needs_address=bool(self.settings.shipping_countries),
        )
        self.webhooks = Webhooks(db, self.gateway, self.ledger, self.subscription_events)
        self.membership = Memberships(
            db, self.billing, MembershipEvents(db), self.settings, lambda: self.gateway().kind, self.now
        )
        self.webhooks.memberships = self.membership.events
        self.checkout.member_discount = self.membership.member_discount
        self.subscriptions = Subscriptions(
            db, self.billing, self.subscription_events, self.settings, lambda: self.gateway().kind, clock
        )
        self.subscriptions.billing_now = self.now

    @property
    def db(self) -> Database:
        return self.services.db

    def now(self) -> datetime:
        """The billing clock: the simulated one (`shine subscriptions advance`) without Stripe."""
        return self.simulated_clock()() if not uses_stripe(self.settings) else self._clock()

    def gateway(self) -> PaymentGateway:
        if self._gateway is None:
            self._gateway = build_gateway(self.settings, self.services.db, self.deliver_event)
            self.services.on_stop(self._forget_gateway)
        if self._billing is None:
            self._billing = self._build_billing(self._gateway)
        return self._gateway

    def _build_billing(self, gateway: PaymentGateway) -> Billing:
        if isinstance(gateway, StripeGateway):
            return StripeBilling(gateway.client)
        assert isinstance(gateway, SimulatedGateway)
        billing = SimulatedBilling(gateway, SimulatedSubscriptions(self.services.db), self.simulated_clock())
        gateway.on_subscription = billing.started  # Pay on a subscription session starts it
        return billing

    def simulated_clock(self) -> SimulatedClock:
        """The simulated subscriptions' time: `shine subscriptions advance` moves it on."""
        return SimulatedClock(self.settings.data_dir / "simulated_clock.json")

    def billing(self) -> Billing:
        """Recurring payments on the same provider as `gateway()`."""
        self.gateway()
        assert self._billing is not None
        return self._billing

    async def _forget_gateway(self) -> None:
        self._billing = None
        gateway, self._gateway = self._gateway, self._given
        if gateway is not None and gateway is not self._given:
            await gateway.close()

    async def deliver_event(self, payload: bytes, signature: str) -> None:
        """Where the simulated gateway sends its signed events: the webhook handler `/stripe/webhook` uses."""
        await self.webhooks.handle(payload, signature)

    def on_paid(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _paid(self, order_id: str) -> None:
        for listener in self._listeners:
            listener(order_id)

    async def housekeeping(self) -> None:
        """Periodic chores: expire simulated sessions past their time (Stripe does this for real ones)."""
        gateway = self.gateway()
        if isinstance(gateway, SimulatedGateway):
            await gateway.expire_due()
