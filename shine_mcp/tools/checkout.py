"""Cart, checkout and order tools. Prices come from the catalog, totals are computed on the server, and the
caller only ever sees their own cart and orders; `refund_order` and `sales_report` are for admins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from shine_mcp.auth.identity import current_user, require_admin
from shine_mcp.auth.policy import ADMIN, TOOL_SCOPE_META
from shine_mcp.auth.toolsets import TOOLSET_META
from shine_mcp.money import MoneyError, to_minor
from shine_mcp.orders import cart as carts
from shine_mcp.orders.cart import MAX_QUANTITY
from shine_mcp.orders.checkout import cancel_refusal
from shine_mcp.orders.checks import report_now, report_period_refusal, sold_elsewhere_refusal
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.report import day_bounds
from shine_mcp.orders.report import sales_report as build_report
from shine_mcp.orders.service import Commerce, uses_stripe
from shine_mcp.orders.views import (
    SIMULATION_NOTICE,
    Cart,
    CheckoutResult,
    OrderList,
    OrderStatus,
    OrderView,
    RefundView,
    SalesReport,
    cart_view,
    describe_total,
    order_summary,
    order_view,
    refund_view,
    report_view,
)
from shine_mcp.services import Services
from shine_mcp.store import orders as store
from shine_mcp.store.clicks import ClicksReport, clicks_report, clicks_report_view
from shine_mcp.store.orders import Order, order_lines
from shine_mcp.tools._confirm import Confirm, needs_confirmation

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADD = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
CHECKOUT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
PAYMENT_LINK_CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
REFUND = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)
CART_CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

ProductId = Annotated[
    str,
    Field(
        min_length=1, max_length=60, description="A product id such as prd_… (search_products lists them)."
    ),
]
VariantId = Annotated[
    str | None,
    Field(
        max_length=60,
        description="A variant id such as var_… (a size or shade; get_product lists them). Omit for the only "
        "variant, or the first in stock.",
    ),
]
OrderId = Annotated[
    str,
    Field(pattern=r"^ord_[0-9a-f]{20}$", description="An order id such as ord_… (list_orders lists yours)."),
]


@contextmanager
def refusals() -> Iterator[None]:
    try:
        yield
    except OrderError as exc:
        raise ToolError(exc.message) from exc


def _check_period(start: date, end: date) -> None:
    refusal = report_period_refusal(start, end)
    if refusal:
        raise ToolError(refusal)


class CheckoutTools:
    """The cart, checkout and order tools of one server and the shop they sell through."""

    def __init__(self, services: Services, commerce: Commerce | None = None) -> None:
        self.services = services
        self.shop = commerce or Commerce(services)

    async def _view_of(self, order: Order) -> OrderView:
        return order_view(order, (await order_lines(self.services.db, [order.id]))[order.id])

    async def _own_order(self, ctx: Context, order_id: str) -> Order:
        caller = current_user(ctx, self.services.settings)
        order = await store.get_order(self.services.db, order_id, caller.user_id)
        if order is None:
            raise ToolError(f"you have no order {order_id!r}; list_orders lists yours")
        return order

    async def add_to_cart(
        self,
        ctx: Context,
        product_id: ProductId,
        quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, description="How many to add.")] = 1,
        variant_id: VariantId = None,
    ) -> Cart:
        """Put a product in the shopper's cart (adds to the quantity already there).

        Use it when the shopper wants to buy something; pass variant_id for a size or shade they chose.
        Without one it takes the only variant, or the first in stock, and a notice says which. Checks stock
        and that the cart stays in one currency. Returns the whole cart with current prices and subtotal."""
        caller = current_user(ctx, self.services.settings)
        try:
            added = await carts.add(self.services.db, caller.user_id, product_id, quantity, variant_id)
        except OrderError as exc:
            settings = self.services.settings  # out of stock here: say where it is sold instead
            elsewhere = await sold_elsewhere_refusal(
                self.services.db, product_id, settings.affiliate_links, base_url=settings.base_url
            )
            raise ToolError(elsewhere or exc.message) from exc
        return cart_view(added.cart, added.chosen)

    async def update_cart_item(
        self,
        ctx: Context,
        product_id: ProductId,
        quantity: Annotated[int, Field(ge=0, le=MAX_QUANTITY, description="The new quantity; 0 removes it.")],
        variant_id: Annotated[
            str | None, Field(max_length=60, description="Which variant, when the cart has several of it.")
        ] = None,
    ) -> Cart:
        """Set how many of one product the cart holds (0 removes it).

        Use it when the shopper changes a quantity. Returns the whole cart with the new subtotal."""
        caller = current_user(ctx, self.services.settings)
        with refusals():
            return cart_view(
                await carts.set_quantity(self.services.db, caller.user_id, product_id, quantity, variant_id)
            )

    async def remove_from_cart(
        self,
        ctx: Context,
        product_id: ProductId,
        variant_id: Annotated[
            str | None, Field(max_length=60, description="Which variant, when the cart has several of it.")
        ] = None,
    ) -> Cart:
        """Take a product out of the shopper's cart.

        Use it when the shopper no longer wants a product in their cart.

        Returns the whole cart that is left, with its subtotal."""
        caller = current_user(ctx, self.services.settings)
        with refusals():
            return cart_view(
                await carts.set_quantity(self.services.db, caller.user_id, product_id, 0, variant_id)
            )

    async def view_cart(self, ctx: Context) -> Cart:
        """Show the shopper's cart: each product with its current catalog price, line totals and subtotal.

        Use it when the shopper asks what is in their cart, and before checkout.

        Notices say what must be fixed before checkout (stock, products gone) and which prices changed
        since the products were added."""
        caller = current_user(ctx, self.services.settings)
        return cart_view(await carts.view(self.services.db, caller.user_id))

    async def checkout(
        self,
        ctx: Context,
        success_url: Annotated[
            str | None,
            Field(
                max_length=1500,
                description="A page of this shop to return to after paying. Default: Shine's.",
            ),
        ] = None,
        cancel_url: Annotated[
            str | None,
            Field(
                max_length=1500,
                description="A page of this shop to return to if they go back. Default: Shine's.",
            ),
        ] = None,
    ) -> CheckoutResult:
        """Turn the shopper's cart into an order and a payment link, charging current catalog prices.

        Use it when the shopper is ready to pay; give them `checkout_url`. Calling it again for the same
        cart returns the same order and link (never a second charge). If a price changed, it refuses and
        says so: confirm with the shopper, then call it again."""
        caller = current_user(ctx, self.services.settings)
        with refusals():
            outcome = await self.shop.checkout.checkout(caller.user_id, success_url, cancel_url)
        order = order_view(outcome.order, outcome.lines)
        simulated = outcome.order.gateway == "simulated"
        notice = SIMULATION_NOTICE if simulated else None
        if order.status != "pending":
            notice = f"This cart was already checked out as {order.order_id}, which is {order.status}."
        return CheckoutResult(
            order=order,
            checkout_url=order.checkout_url,
            reused=outcome.reused,
            replaced_orders=list(outcome.replaced),
            simulated=simulated,
            notice=notice,
        )

    async def get_order(self, ctx: Context, order_id: OrderId) -> OrderView:
        """One of the shopper's orders: status and what happens next, the lines at the prices paid, the
        total, refunds, and tracking once shipped. Only the caller's own orders can be read.

        Use it when the shopper asks about one order: where it is, what it held, whether it was
        refunded."""
        order = await self._own_order(ctx, order_id)
        order = await self.shop.checkout.refresh(order)  # a pending order may have been paid meanwhile
        return await self._view_of(order)

    async def list_orders(
        self,
        ctx: Context,
        status: Annotated[OrderStatus | None, Field(description="Only orders in this status.")] = None,
        limit: Annotated[int, Field(ge=1, le=50, description="How many, newest first.")] = 20,
    ) -> OrderList:
        """The shopper's own orders, newest first, with status and total.

        Use it when the shopper asks about their orders without naming one.

        Use get_order with an order id for the lines, tracking and what happens next."""
        caller = current_user(ctx, self.services.settings)
        rows = await store.list_orders(
            self.services.db, caller.user_id, statuses=[status] if status else None, limit=limit
        )
        lines = await order_lines(self.services.db, [o.id for o in rows])
        return OrderList(orders=[order_summary(o, lines[o.id]) for o in rows])

    async def cancel_order(self, ctx: Context, order_id: OrderId, confirm: Confirm = False) -> OrderView:
        """Cancel one of the shopper's orders that is not paid yet; its payment link stops working.

        Use it when the shopper changes their mind before paying.

        A paid order cannot be cancelled: use request_refund. Call it without confirm first: that cancels
        nothing and says what would happen; after the shopper says yes, call with confirm=true."""
        caller = current_user(ctx, self.services.settings)
        if confirm is not True:
            order = await self._own_order(ctx, order_id)
            refusal = cancel_refusal(order)
            if refusal:
                raise ToolError(refusal)
            raise await self._confirm_cancel(order)
        with refusals():
            order = await self.shop.checkout.cancel(caller.user_id, order_id)
        return await self._view_of(order)

    async def _confirm_cancel(self, order: Order) -> ToolError:
        lines = (await order_lines(self.services.db, [order.id]))[order.id]
        items = ", ".join(f"{line.quantity} × {line.brand} {line.name}".strip() for line in lines)
        return needs_confirmation(
            "cancel_order",
            f"This cancels your unpaid order {order.id} ({items}; {describe_total(order)}): its payment "
            "link stops working. Nothing has been charged.",
        )

    async def request_refund(
        self,
        ctx: Context,
        order_id: OrderId,
        reason: Annotated[
            str, Field(min_length=3, max_length=500, description="Why, in the shopper's words.")
        ],
    ) -> OrderView:
        """Ask the shop to refund a paid order, within the shop's return window (counted from shipping).

        Use it when the shopper wants their money back for an order they paid for.

        The shop reviews the request and refunds it; no money moves yet. Asking twice changes nothing."""
        caller = current_user(ctx, self.services.settings)
        with refusals():
            order = await self.shop.refunds.request(caller.user_id, order_id, reason.strip())
        return await self._view_of(order)

    async def refund_order(
        self,
        ctx: Context,
        order_id: OrderId,
        amount: Annotated[
            Decimal | None,
            Field(gt=0, description="In the order's currency, e.g. 12.50. Omit to refund all that is left."),
        ] = None,
    ) -> RefundView:
        """For the shop's admins: give money back on a paid order through the payment provider.

        Use it when an admin approves a refund request or gives money back on an order.

        Partial refunds are allowed; the total never exceeds what was paid. If the provider does not answer,
        calling again retries the same refund (it can never pay back twice). Refused for non-admins."""
        caller = current_user(ctx, self.services.settings)
        require_admin(caller)
        order = await store.get_order(self.services.db, order_id)
        if order is None:
            raise ToolError(f"there is no order {order_id!r}")
        try:
            amount_minor = to_minor(amount, order.currency) if amount is not None else None
        except MoneyError as exc:
            raise ToolError(f"amount: {exc}") from exc
        with refusals():
            updated, refund = await self.shop.refunds.refund(caller.user_id, order_id, amount_minor)
        return refund_view(refund, updated, (await order_lines(self.services.db, [order_id]))[order_id])

    async def sales_report(
        self,
        ctx: Context,
        start: Annotated[date, Field(description="First day (UTC), e.g. 2026-11-01.")],
        end: Annotated[date, Field(description="Last day (UTC), included.")],
        include_simulated: Annotated[
            bool | None,
            Field(
                description="Count simulated-checkout orders. Default: only while the shop has no Stripe key."
            ),
        ] = None,
    ) -> SalesReport:
        """For the shop's admins: orders paid, revenue, refunds and net per day and currency, and totals;
        refill subscriptions: active, monthly recurring revenue, churn and the refills of the next 14 days;
        premium members: active, joined, ended, their monthly recurring revenue and churn.

        Use it when an admin asks how the shop sold over a period.

        Revenue counts on the day of payment, refunds on the day they were made. Refused for non-admins."""
        require_admin(current_user(ctx, self.services.settings))
        _check_period(start, end)
        simulated = (
            not uses_stripe(self.services.settings) if include_simulated is None else include_simulated
        )
        now = report_now(self.shop.billing())
        report = await build_report(self.services.db, start, end, include_simulated=simulated, now=now)
        return report_view(report)

    async def admin_clicks_report(
        self,
        ctx: Context,
        start: Annotated[date, Field(description="First day (UTC), e.g. 2026-11-01.")],
        end: Annotated[date, Field(description="Last day (UTC), included.")],
    ) -> ClicksReport:
        """For the shop's admins: "Buy at <merchant>" clicks per product and source (widget, mcp, shop).

        Use it when an admin asks which products send shoppers to other merchants.

        Affiliate mode's sales report: which products send shoppers to which merchant, and from where.
        Clicks carry no personal data. Refused for non-admins."""
        require_admin(current_user(ctx, self.services.settings))
        _check_period(start, end)
        since, until = day_bounds(start, end)
        return clicks_report_view(start, end, await clicks_report(self.services.db, since, until))


def register(server: MCPServer, services: Services, *, commerce: Commerce | None = None) -> None:
    """`commerce` is a seam for tests (a gateway with an injected clock); by default it follows Settings."""
    tools = CheckoutTools(services, commerce)
    server.tool(annotations=ADD)(tools.add_to_cart)
    server.tool(annotations=CART_CHANGE)(tools.update_cart_item)
    server.tool(annotations=CART_CHANGE)(tools.remove_from_cart)
    server.tool(annotations=READ_ONLY)(tools.view_cart)
    server.tool(annotations=CHECKOUT)(tools.checkout)
    server.tool(annotations=READ_ONLY)(tools.get_order)
    server.tool(annotations=READ_ONLY)(tools.list_orders)
    server.tool(annotations=PAYMENT_LINK_CHANGE)(tools.cancel_order)
    server.tool(annotations=ADD)(tools.request_refund)
    server.tool(annotations=REFUND, meta={TOOL_SCOPE_META: ADMIN})(tools.refund_order)
    server.tool(annotations=READ_ONLY, meta={TOOL_SCOPE_META: ADMIN})(tools.sales_report)
    server.tool(annotations=READ_ONLY, meta={TOOL_SCOPE_META: ADMIN, TOOLSET_META: "merchant"})(
        tools.admin_clicks_report
    )
