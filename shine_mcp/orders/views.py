"""What the cart and order tools return: pydantic models (their schemas are the tools' output schemas)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from shine_mcp.money import Money, format_money
from shine_mcp.orders.cart import PricedCart
from shine_mcp.orders.machine import Hold, Status
from shine_mcp.orders.report import Report
from shine_mcp.store.clicks import ClicksReport, clicks_report_view
from shine_mcp.store.orders import Order, OrderLine, Refund

OrderStatus = Literal[
    "pending",
    "paid",
    "fulfilling",
    "shipped",
    "partially_refunded",
    "refunded",
    "disputed",
    "expired",
    "cancelled",
    "payment_failed",
]

SIMULATION_NOTICE = (
    "This shop runs a SIMULATED checkout (no Stripe key is configured): the link opens a local test page, "
    "no card is asked for and no money moves."
)

_NEXT_STEPS = {
    Status.PENDING: "Waiting for payment: open the checkout link to pay, or ask to cancel the order.",
    Status.PAID: "Paid. It goes to fulfilment next.",
    Status.FULFILLING: "Paid and being prepared for shipping.",
    Status.SHIPPED: "Shipped; the tracking number is below when the shop has one.",
    Status.PARTIALLY_REFUNDED: "Part of the payment was refunded.",
    Status.REFUNDED: "Refunded in full.",
    Status.DISPUTED: "The payment is disputed with the card issuer; the shop will answer it.",
    Status.EXPIRED: "The payment page expired unpaid. Check out again to get a new link.",
    Status.CANCELLED: "Cancelled before payment; nothing was charged.",
    Status.PAYMENT_FAILED: "The payment failed; nothing was charged. Check out again to retry.",
}

# What a held order (`Order.hold_reason`) tells its buyer while it is paid and waits for the merchant.
_HELD_STEPS = {
    Hold.OVERSOLD: (
        "Paid, but an item sold out just before your payment came through, so this order is on hold and "
        "has not been sent. The shop will contact you to send it once it is back in stock, or refund you."
    ),
    Hold.AMOUNT_MISMATCH: (
        "Paid. The shop is checking the payment before sending your order and will contact you if anything "
        "is needed."
    ),
    Hold.AWAITING_ADDRESS: (
        "Paid. This refill is sent as soon as the shipping address from its payment page reaches the shop."
    ),
}
HoldReason = Literal["oversold", "amount_mismatch", "awaiting_address"]


def steps_for(order: Order) -> str:
    status = Status(order.status)
    if order.hold_reason and status is Status.PAID:
        return _HELD_STEPS[Hold(order.hold_reason)]
    if status is Status.SHIPPED and order.tracking_number:
        return f"Shipped{' with ' + order.carrier if order.carrier else ''}: tracking number {order.tracking_number}."
    return _NEXT_STEPS[status]


def _hold_of(order: Order) -> HoldReason | None:
    if order.hold_reason is None:
        return None
    reason: HoldReason = Hold(order.hold_reason).value
    return reason


class CartLine(BaseModel):
    product_id: str
    variant_id: str = Field(description="The size or shade in the cart (var_…).")
    brand: str
    name: str = Field(description="The product's name with the variant's, e.g. 'Gel Cream – 50 ml'.")
    quantity: int
    unit_price: Money = Field(description="The catalog's current price; checkout charges this.")
    line_total: Money
    in_stock: int = Field(description="Units of this variant the shop has now.")
    price_changed_from: Money | None = Field(
        default=None, description="The price when it was added, if the catalog price changed since."
    )


class Cart(BaseModel):
    lines: list[CartLine]
    item_count: int = Field(description="Units in the cart, all products together.")
    subtotal: Money | None = Field(description="Sum of the lines at current prices; null for an empty cart.")
    notices: list[str] = Field(
        description="Problems to fix before checkout, price changes, and which variant add_to_cart chose "
        "when none was named."
    )


class OrderLineView(BaseModel):
    product_id: str
    variant_id: str | None = Field(description="The size or shade bought (var_…).")
    brand: str
    name: str
    quantity: int
    unit_price: Money = Field(description="The price paid, fixed at checkout.")
    line_total: Money


class OrderView(BaseModel):
    order_id: str
    status: OrderStatus
    next_steps: str = Field(description="What happens next, in a sentence the shopper can read.")
    created_at: datetime
    lines: list[OrderLineView]
    total: Money
    refunded: Money = Field(description="Money given back so far.")
    checkout_url: str | None = Field(description="The payment page, while the order waits for payment.")
    paid_at: datetime | None
    shipped_at: datetime | None
    tracking_number: str | None
    carrier: str | None
    refund_requested: bool
    simulated: bool = Field(description="Paid (or to be paid) through the simulated checkout: no real money.")
    hold_reason: HoldReason | None = Field(
        default=None,
        description="Why the shop holds this paid order instead of sending it: oversold (an item sold out "
        "before the payment arrived), amount_mismatch (the payment is being checked) or awaiting_address (a "
        "refill paid before its shipping address arrived; sent when it does). Null otherwise.",
    )


class CheckoutResult(BaseModel):
    order: OrderView
    checkout_url: str | None = Field(
        description="Give this link to the shopper to pay; null when the order is already paid."
    )
    reused: bool = Field(
        description="True when this cart had been checked out already: same order, same link."
    )
    replaced_orders: list[str] = Field(
        description="Older unpaid orders of this cart that were closed, so only this link can be paid."
    )
    simulated: bool
    notice: str | None = Field(description="Say this to the shopper when present.")


class OrderSummary(BaseModel):
    order_id: str
    status: OrderStatus
    created_at: datetime
    total: Money
    items: int = Field(description="Units in the order.")
    next_steps: str = Field(description="What happens next, in a sentence the shopper can read.")
    tracking_number: str | None = Field(description="The carrier's tracking number once shipped, else null.")
    carrier: str | None = Field(description="Who delivers it once shipped (e.g. UPS), else null.")


class OrderList(BaseModel):
    orders: list[OrderSummary] = Field(description="Newest first.")


class RefundView(BaseModel):
    refund_id: str
    amount: Money
    status: Literal["creating", "pending", "succeeded", "failed"]
    order: OrderView


class SalesDay(BaseModel):
    day: date
    currency: str
    orders: int = Field(description="Orders paid that day.")
    revenue: Money = Field(description="Totals of the orders paid that day.")
    refunds: Money = Field(description="Refunds made that day (of any order).")
    net: Money


class SalesTotal(BaseModel):
    currency: str
    orders: int
    revenue: Money
    refunds: Money
    net: Money


class SalesVariant(BaseModel):
    variant_id: str
    product_id: str
    name: str = Field(description="Brand, product and variant, as sold.")
    units: int = Field(description="Units in the orders paid in the period.")
    revenue: Money = Field(description="Their prices paid (before refunds).")


class SalesSubscriptions(BaseModel):
    currency: str
    active: int = Field(
        description="Refill subscriptions paid for and running at the period's end (not paused)."
    )
    monthly_recurring_revenue: Money = Field(
        description="What the active ones bring a month: each delivery's amount x 52 / 12 / weeks between."
    )
    active_at_start: int = Field(description="Subscriptions running when the period began.")
    ended: int = Field(description="Of those, how many ended within the period.")
    churn: float | None = Field(
        description="ended / active_at_start (0.25 is 25 %); null when none ran at the start."
    )
    upcoming_refills: int = Field(description="Refills due in the next 14 days (from now).")
    upcoming_value: Money = Field(description="What those refills will charge.")


class SalesMembers(BaseModel):
    currency: str
    active: int = Field(description="Premium members paid up and not ended at the period's end.")
    joined: int = Field(description="Members whose first payment was made within the period.")
    ended: int = Field(description="Members at the period's start whose membership ended within it.")
    active_at_start: int = Field(description="Members when the period began.")
    churn: float | None = Field(
        description="ended / active_at_start (0.25 is 25 %); null when there were none at the start."
    )
    monthly_recurring_revenue: Money = Field(
        description="What the active members bring a month: a monthly plan's price, a yearly one's / 12."
    )


class SalesReport(BaseModel):
    start: date
    end: date
    days: list[SalesDay] = Field(description="One row per UTC day and currency with activity.")
    totals: list[SalesTotal] = Field(description="The whole period, per currency.")
    by_variant: list[SalesVariant] = Field(description="Each size or shade sold, highest revenue first.")
    simulated_included: bool = Field(description="True when simulated (no real money) orders are counted.")
    subscriptions: list[SalesSubscriptions] = Field(
        default_factory=list, description="Refill subscriptions per currency (none: the list is empty)."
    )
    premium_members: list[SalesMembers] = Field(
        default_factory=list, description="Premium memberships per currency (none: the list is empty)."
    )
    click_outs: ClicksReport = Field(
        description="Affiliate mode: 'Buy at <merchant>' clicks in the period per product and source "
        "(widget, mcp, shop, link), most clicked first."
    )


def cart_view(priced: PricedCart, chosen: str | None = None) -> Cart:
    """`chosen`: the sentence saying which variant add_to_cart picked, when it picked one."""
    lines: list[CartLine] = []
    notices = priced.problems()
    currency = priced.currency or "USD"
    for line in priced.lines:
        product = line.product
        lines.append(
            CartLine(
                product_id=line.product_id,
                variant_id=line.variant_id,
                brand=product.brand if product else "",
                name=line.name,
                quantity=line.quantity,
                unit_price=Money.of(line.unit_price_minor, currency),
                line_total=Money.of(line.line_total_minor, currency),
                in_stock=line.variant.stock if line.variant else 0,
                price_changed_from=Money.of(line.added_price_minor, currency) if line.price_changed else None,
            )
        )
    changes = priced.price_changes()
    if changes:
        notices.append("prices changed since added: " + "; ".join(changes))
    if chosen:
        notices.append(chosen)
    return Cart(
        lines=lines,
        item_count=sum(line.quantity for line in priced.lines),
        subtotal=Money.of(priced.subtotal_minor, currency) if priced.lines else None,
        notices=notices,
    )


def order_view(order: Order, lines: list[OrderLine]) -> OrderView:
    status = Status(order.status)
    return OrderView(
        order_id=order.id,
        status=status.value,
        next_steps=steps_for(order),
        created_at=order.created_at,
        lines=[
            OrderLineView(
                product_id=line.product_id,
                variant_id=line.variant_id,
                brand=line.brand,
                name=line.name,
                quantity=line.quantity,
                unit_price=Money.of(line.unit_price_minor, order.currency),
                line_total=Money.of(line.unit_price_minor * line.quantity, order.currency),
            )
            for line in lines
        ],
        total=Money.of(order.total_minor, order.currency),
        refunded=Money.of(order.amount_refunded_minor, order.currency),
        checkout_url=order.checkout_url if status is Status.PENDING else None,
        paid_at=order.paid_at,
        shipped_at=order.shipped_at,
        tracking_number=order.tracking_number,
        carrier=order.carrier,
        refund_requested=order.refund_requested_at is not None,
        simulated=order.gateway == "simulated",
        hold_reason=_hold_of(order),
    )


def order_summary(order: Order, lines: list[OrderLine]) -> OrderSummary:
    return OrderSummary(
        order_id=order.id,
        status=Status(order.status).value,
        created_at=order.created_at,
        total=Money.of(order.total_minor, order.currency),
        items=sum(line.quantity for line in lines),
        next_steps=steps_for(order),
        tracking_number=order.tracking_number,
        carrier=order.carrier,
    )


def refund_view(refund: Refund, order: Order, lines: list[OrderLine]) -> RefundView:
    return RefundView(
        refund_id=refund.id,
        amount=Money.of(refund.amount_minor, refund.currency),
        status=refund.status,
        order=order_view(order, lines),
    )


def report_view(report: Report) -> SalesReport:
    def money(minor: int, currency: str) -> Money:
        return Money.of(minor, currency)

    return SalesReport(
        start=report.start,
        end=report.end,
        days=[
            SalesDay(
                day=day,
                currency=currency,
                orders=t.orders,
                revenue=money(t.revenue_minor, currency),
                refunds=money(t.refunds_minor, currency),
                net=money(t.net_minor, currency),
            )
            for (day, currency), t in report.days.items()
        ],
        totals=[
            SalesTotal(
                currency=currency,
                orders=t.orders,
                revenue=money(t.revenue_minor, currency),
                refunds=money(t.refunds_minor, currency),
                net=money(t.net_minor, currency),
            )
            for currency, t in report.totals.items()
        ],
        by_variant=[
            SalesVariant(
                variant_id=variant_id,
                product_id=sold.product_id,
                name=sold.name,
                units=sold.units,
                revenue=money(sold.revenue_minor, currency),
            )
            for (variant_id, currency), sold in report.variants.items()
        ],
        simulated_included=report.simulated_included,
        subscriptions=[
            SalesSubscriptions(
                currency=currency,
                active=r.active,
                monthly_recurring_revenue=money(r.mrr_minor, currency),
                active_at_start=r.active_at_start,
                ended=r.ended,
                churn=r.churn,
                upcoming_refills=r.upcoming_refills,
                upcoming_value=money(r.upcoming_minor, currency),
            )
            for currency, r in report.subscriptions.items()
        ],
        premium_members=[
            SalesMembers(
                currency=currency,
                active=m.active,
                joined=m.joined,
                ended=m.ended,
                active_at_start=m.active_at_start,
                churn=m.churn,
                monthly_recurring_revenue=money(m.mrr_minor, currency),
            )
            for currency, m in report.members.items()
        ],
        click_outs=clicks_report_view(report.start, report.end, report.clicks),
    )


def describe_total(order: Order) -> str:
    return format_money(order.total_minor, order.currency)
