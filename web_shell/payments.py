"""Payment and fulfilment routes, and the fulfilment worker's place in the app's lifespan.

- `POST /stripe/webhook`: Stripe's events (and the simulated checkout's, signed the same way), verified
  with the stripe SDK; answered 2xx only once the change is committed.
- `GET /checkout/success?session_id=…`, `GET /checkout/cancel?order_id=…`: pages showing the order's real
  state, read from the database and, for a pending order, from the payment provider; only to its owner (the
  signed token Shine puts in these links, or the owner's web session), a neutral page to anyone else.
- `GET /simulated-checkout/{id}` with Pay / Cancel: only when no Stripe key is configured, and plainly
  labelled as a simulation.
- `POST /fulfilment/callback`: the fulfilment partner reports a shipment (signed with the shared secret).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.auth.keys import Keys
from shine_mcp.clock import utcnow
from shine_mcp.integrations import fulfilment as partner_http
from shine_mcp.integrations.payments import SignatureError, SimulatedGateway
from shine_mcp.money import format_money, from_stripe_amount
from shine_mcp.orders import machine
from shine_mcp.orders.fulfilment import FulfilmentWorker, partner_secrets
from shine_mcp.orders.return_links import TOKEN_PARAM, return_link_ok
from shine_mcp.orders.service import Commerce, uses_stripe
from shine_mcp.orders.views import order_view
from shine_mcp.services import Services
from shine_mcp.store.orders import Order, find_order, get_order, order_lines
from web_shell import shop_page
from web_shell.auth import web_identity
from web_shell.limits import CLOSE, BodyRefused, read_body, read_form
from web_shell.simulated_portal import SimulatedPortal
from web_shell.templating import notice, render

log = logging.getLogger("shine.payments")

MAX_EVENT_BYTES = 1024 * 1024
# What Stripe's (`cs_test_…`, `cs_live_…`) and the simulated checkout's (`cs_sim_…`) session ids and
# Shine's order ids look like: anything else is answered without a database or provider lookup.
SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
ORDER_ID = re.compile(r"ord_[A-Za-z0-9]{1,36}")


RETURN = "Return to the shop"


def _notice(
    request: Request,
    title: str,
    heading: str,
    *paragraphs: str,
    status: int = 200,
    back_to_shop: str | None = None,
) -> Response:
    return notice(
        request,
        title,
        *paragraphs,
        heading=heading,
        status=status,
        look="checkout",
        back_to_shop=back_to_shop,
        back_label=RETURN,
    )


_HEADLINES = {
    machine.Status.PENDING: "Waiting for your payment",
    machine.Status.PAID: "Thank you: your payment is confirmed",
    machine.Status.FULFILLING: "Thank you: your order is being prepared",
    machine.Status.SHIPPED: "Your order has shipped",
    machine.Status.PARTIALLY_REFUNDED: "Your order was partly refunded",
    machine.Status.REFUNDED: "Your order was refunded",
    machine.Status.DISPUTED: "This payment is disputed",
    machine.Status.EXPIRED: "This checkout expired before payment",
    machine.Status.CANCELLED: "This order was cancelled",
    machine.Status.PAYMENT_FAILED: "The payment did not go through",
}


class PaymentsWeb:
    def __init__(
        self,
        services: Services,
        *,
        commerce: Commerce | None = None,
        webhook_outcome: Callable[[str], None] | None = None,
    ) -> None:
        self.services, self.settings = services, services.settings
        # Told each webhook's outcome (applied, duplicate, ignored, unknown_order, rejected, failed): metrics.
        self.webhook_outcome = webhook_outcome or (lambda _outcome: None)
        self.commerce = commerce or Commerce(services)
        self.worker = FulfilmentWorker(
            services.db, self.commerce.ledger, self.settings, housekeeping=self.commerce.housekeeping
        )
        self.commerce.on_paid(self.worker.wake)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The fulfilment worker runs for as long as the app does."""
        async with anyio.create_task_group() as group:
            if self.settings.fulfilment_worker:
                group.start_soon(self.worker.run)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/stripe/webhook", self.webhook, methods=["POST"]),
            Route("/checkout/success", self.success, methods=["GET"]),
            Route("/checkout/cancel", self.cancelled, methods=["GET"]),
            Route("/fulfilment/callback", self.fulfilment_callback, methods=["POST"]),
        ]
        if not uses_stripe(self.settings):  # with a Stripe key, no simulation anywhere
            routes += [
                Route("/simulated-checkout/{session_id}", self.simulated_page, methods=["GET"]),
                Route("/simulated-checkout/{session_id}/pay", self.simulated_pay, methods=["POST"]),
                Route("/simulated-checkout/{session_id}/cancel", self.simulated_cancel, methods=["POST"]),
                *SimulatedPortal(self.commerce).routes(),
            ]
        return routes

    # --- the webhook -----------------------------------------------------------------------------------
    async def webhook(self, request: Request) -> Response:
        if uses_stripe(self.settings) and not self.settings.stripe_webhook_secret:
            log.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set: it cannot be verified")
            self.webhook_outcome("unverifiable")
            return JSONResponse({"error": "webhook secret not configured"}, status_code=503)
        try:
            body = await read_body(request, MAX_EVENT_BYTES, self.settings)
        except BodyRefused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status_code, headers=CLOSE)
        try:
            result = await self.commerce.webhooks.handle(body, request.headers.get("stripe-signature"))
        except SignatureError as exc:
            log.warning("rejected a webhook: %s", exc)
            self.webhook_outcome("rejected")
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        except Exception:  # not stored: a 5xx makes Stripe deliver it again later
            log.exception("could not process a webhook")
            self.webhook_outcome("failed")
            return JSONResponse({"error": "not processed; deliver again"}, status_code=500)
        self.webhook_outcome(result.outcome)
        return JSONResponse(
            {
                "received": True,
                "outcome": result.outcome,
                "order_id": result.order_id,
                "status": result.status,
            }
        )

    # --- the pages the shopper comes back to -----------------------------------------------------------
    async def _order_page(self, request: Request, order: Order, extra: str = "") -> Response:
        lines = (await order_lines(self.services.db, [order.id]))[order.id]
        view = order_view(order, lines)
        status = machine.Status(order.status)
        rows = [
            (f"{line.brand} {line.name}".strip(), line.quantity, line.line_total.display)
            for line in view.lines
        ]
        return render(
            request,
            "order.html",
            title=f"Order {order.id}",
            heading=_HEADLINES[status],
            look="checkout",
            simulated=view.simulated,
            order_id=order.id,
            order_status=status.value.replace("_", " "),
            next_steps=view.next_steps,
            tracking=f"{order.carrier or ''} {order.tracking_number}" if order.tracking_number else None,
            extra=extra,
            rows=rows,
            total=view.total.display,
            back_to_shop=self._shop_link(request),
            back_label=RETURN,
        )

    def _shop_link(self, request: Request) -> str:
        """Back to the page the shopper chatted from (`shop_page`), else the shop's home."""
        home = shop_page.remembered(request, self.settings) or (
            self.settings.allowed_origins[0] if self.settings.allowed_origins else "/"
        )
        return home

    async def _may_see(self, request: Request, order: Order) -> bool:
        """The order's owner: the link Shine signed for this order, or their own web session."""
        claimed = request.query_params.get("order_id")
        token = request.query_params.get(TOKEN_PARAM)
        if claimed == order.id and return_link_ok(order.id, token, self.settings, utcnow()):
            return True
        identity = await web_identity(request, self.services)
        return identity is not None and identity.user_id == order.user_id

    def _signed_order_id(self, request: Request) -> str | None:
        order_id = request.query_params.get("order_id", "")
        token = request.query_params.get(TOKEN_PARAM)
        if ORDER_ID.fullmatch(order_id) and return_link_ok(order_id, token, self.settings, utcnow()):
            return order_id
        return None

    async def success(self, request: Request) -> Response:
        session_id = request.query_params.get("session_id", "").strip()
        if not session_id:
            return _notice(
                request, "Checkout", "No checkout was named", "Open the link from your order.", status=400
            )
        not_found = _notice(request, "Checkout", "We could not find this checkout", status=404)
        if not SESSION_ID.fullmatch(session_id):
            return not_found
        order = await find_order(self.services.db, session_id=session_id)
        if order is None:
            # Only Shine's own signed link may ask the provider about a session it has not stored yet.
            signed = self._signed_order_id(request)
            recovered = (
                await self.commerce.checkout.recover(session_id, unattached=signed) if signed else None
            )
            return await self._order_page(request, recovered) if recovered is not None else not_found
        if not await self._may_see(request, order):
            return _notice(
                request,
                "Checkout",
                "Thank you",
                "This page shows an order only to the person who placed it. To see yours, open the link you "
                "were sent back with in the browser you paid with, or ask the shop's chat about your orders.",
                back_to_shop=self._shop_link(request),
            )
        recovered = await self.commerce.checkout.recover(session_id)
        return await self._order_page(request, recovered or order)

    async def cancelled(self, request: Request) -> Response:
        order_id = request.query_params.get("order_id", "").strip()
        order = await get_order(self.services.db, order_id) if ORDER_ID.fullmatch(order_id) else None
        if order is None or not await self._may_see(request, order):
            # The same page whether the order exists or not, and nothing about it: an order id alone
            # (from a screenshot, an email, a support chat) shows nobody the order.
            return _notice(
                request,
                "Checkout cancelled",
                "Your checkout was cancelled",
                "If you left the payment page without paying, nothing was charged and your cart is kept: "
                "check out again from the chat whenever you like.",
                back_to_shop=self._shop_link(request),
            )
        order = await self.commerce.checkout.refresh(order)
        extra = (
            "You left the payment page without paying. Nothing was charged and your cart is kept: "
            "check out again from the chat whenever you like."
            if order.status == machine.Status.PENDING.value
            else ""
        )
        return await self._order_page(request, order, extra)

    # --- the simulated checkout ------------------------------------------------------------------------
    def _simulator(self) -> SimulatedGateway:
        gateway = self.commerce.gateway()
        if not isinstance(gateway, SimulatedGateway):
            raise RuntimeError("the simulated checkout is not in use")
        return gateway

    def _csrf(self, session_id: str) -> str:
        return Keys.load(self.settings).csrf_token(f"simulated-checkout:{session_id}")

    async def _form_ok(self, request: Request, session_id: str) -> bool:
        form = await read_form(request, self.settings)
        token = form.get("csrf")
        return Keys.load(self.settings).csrf_ok(
            f"simulated-checkout:{session_id}", token if isinstance(token, str) else None
        )

    async def simulated_page(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        data = await self._simulator().session_data(session_id)
        if data is None:
            return _notice(request, "Simulated checkout", "No such checkout", status=404)
        currency = str(data["currency"]).upper()
        rows = [
            (
                str(item["description"]),
                int(item["quantity"]),
                format_money(from_stripe_amount(int(item["amount_total"]), currency), currency),
            )
            for item in data["line_items"]["data"]
        ]
        total = from_stripe_amount(int(data["amount_total"]), currency)  # the session keeps Stripe's units
        status = data["status"]
        if status == "open" and int(data["expires_at"]) <= int(utcnow().timestamp()):
            status = "expired"
        return render(
            request,
            "simulated_checkout.html",
            title="Simulated checkout (no real payment)",
            heading="Simulated checkout",
            look="checkout",
            rows=rows,
            total=format_money(total, currency),
            state=status,
            session_id=session_id,
            csrf=self._csrf(session_id) if status == "open" else "",
        )

    async def simulated_pay(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        if not await self._form_ok(request, session_id):
            return _notice(
                request, "Simulated checkout", "This form has expired", "Reload the page.", status=403
            )
        simulator = self._simulator()
        data = await simulator.session_data(session_id)
        if data is None:
            return _notice(request, "Simulated checkout", "No such checkout", status=404)
        session = await simulator.pay(session_id)
        if session.paid:
            target = str(data["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
            return RedirectResponse(target, status_code=303)
        return RedirectResponse(f"/simulated-checkout/{session_id}", status_code=303)

    async def simulated_cancel(self, request: Request) -> Response:
        """Like Stripe's back link: the shopper leaves; the session stays open until it expires."""
        session_id = request.path_params["session_id"]
        if not await self._form_ok(request, session_id):
            return _notice(
                request, "Simulated checkout", "This form has expired", "Reload the page.", status=403
            )
        data = await self._simulator().session_data(session_id)
        if data is None:
            return _notice(request, "Simulated checkout", "No such checkout", status=404)
        return RedirectResponse(str(data["cancel_url"]), status_code=303)

    # --- the fulfilment partner's callback -------------------------------------------------------------
    async def fulfilment_callback(self, request: Request) -> Response:
        try:
            body = await read_body(request, MAX_EVENT_BYTES, self.settings)
        except BodyRefused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status_code, headers=CLOSE)
        signature = request.headers.get(partner_http.SIGNATURE_HEADER)
        if not partner_http.verify(body, signature, partner_secrets(self.settings)):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            data: Any = json.loads(body)
            order_id = str(data["order_id"])
            status = str(data["status"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected JSON with order_id and status"}, status_code=400)
        if status != "shipped":
            return JSONResponse({"error": f"unsupported status {status!r}; send 'shipped'"}, status_code=422)
        tracking = str(data.get("tracking_number") or "")[:100] or None
        carrier = str(data.get("carrier") or "")[:100] or None
        event_id = str(data.get("event_id") or f"{order_id}:shipped:{tracking}")[:255]
        shipped_at = utcnow()
        applied = await self.commerce.ledger.apply(
            order_id,
            machine.Shipped(at=shipped_at, tracking_number=tracking, carrier=carrier),
            dedupe=("fulfilment", event_id, "shipped"),
        )
        if applied.duplicate:
            return JSONResponse({"received": True, "duplicate": True})
        if applied.order is None:
            return JSONResponse({"error": f"no order {order_id!r}"}, status_code=404)
        return JSONResponse({"received": True, "duplicate": False, "status": applied.order.status})
