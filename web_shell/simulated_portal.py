"""The simulated customer portal: what Stripe's hosted payment-methods page does, without Stripe.

`GET /simulated-portal/{token}` lists the customer's simulated subscriptions and says plainly that no card is
stored; "Use another card (simulated)" (`POST …/card`, CSRF-checked) retries a declined charge at once, as
Stripe retries an open invoice when the card changes. The token is signed by Shine (`portal_token`), so only
links `manage_payment_methods` gave open it. Only mounted while no Stripe key is configured.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.auth.keys import Keys
from shine_mcp.integrations.billing import SimulatedBilling, items_of, portal_customer
from shine_mcp.money import format_money, from_stripe_amount
from shine_mcp.orders.service import Commerce
from web_shell.limits import read_form
from web_shell.templating import notice, render


def _notice(request: Request, heading: str, status: int) -> Response:
    return notice(request, "Payment methods", heading=heading, status=status, look="portal")


class SimulatedPortal:
    def __init__(self, commerce: Commerce) -> None:
        self.commerce, self.settings = commerce, commerce.settings

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/simulated-portal/{token}", self.page, methods=["GET"]),
            Route("/simulated-portal/{token}/card", self.new_card, methods=["POST"]),
        ]

    def _billing(self) -> SimulatedBilling:
        billing = self.commerce.billing()
        if not isinstance(billing, SimulatedBilling):
            raise RuntimeError("the simulated portal is not in use")
        return billing

    def _customer(self, request: Request) -> str | None:
        return portal_customer(request.path_params["token"], self._billing().gateway.webhook_secret)

    async def page(self, request: Request) -> Response:
        customer = self._customer(request)
        if customer is None:
            return _notice(request, "This link is not valid", 404)
        rows = []
        for data in await self._billing().customer_subscriptions(customer):
            items = items_of(data)
            currency = str(data["currency"]).upper()
            amount = sum(int(i["price"]["unit_amount"]) * int(i["quantity"]) for i in items)
            recurring = items[0]["price"]["recurring"] if items else {}
            every = f"every {recurring.get('interval_count', 1)} {recurring.get('interval', '')}(s)"
            state = "payment failed, waiting for a new card" if data.get("open_invoice") else data["status"]
            rows.append(f"{format_money(from_stripe_amount(amount, currency), currency)} {every}: {state}")
        return render(
            request,
            "simulated_portal.html",
            title="Payment methods (simulated)",
            heading="Payment methods",
            look="portal",
            charges=rows,
            csrf=Keys.load(self.settings).csrf_token(f"simulated-portal:{customer}"),
            action=f"/simulated-portal/{request.path_params['token']}/card",
            back_to_shop=f"{self.settings.base_url}/",
        )

    async def new_card(self, request: Request) -> Response:
        customer = self._customer(request)
        if customer is None:
            return _notice(request, "This link is not valid", 404)
        form = await read_form(request, self.settings)
        token = form.get("csrf")
        if not Keys.load(self.settings).csrf_ok(
            f"simulated-portal:{customer}", token if isinstance(token, str) else None
        ):
            return _notice(request, "This form expired; reload the page", 403)
        await self._billing().card_updated(customer)
        return RedirectResponse(f"/simulated-portal/{request.path_params['token']}", status_code=303)
