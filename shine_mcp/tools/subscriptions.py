"""Refill subscription tools ("subscribe and save"): a product delivered and charged every few weeks, with the
interval suggested from its size and daily use. The caller only ever sees and changes their own
subscriptions; starting and cancelling one need the shopper's yes (`confirm`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.auth.identity import current_user
from shine_mcp.auth.policy import READ, SHOP, TOOL_SCOPE_META
from shine_mcp.money import Money, format_money
from shine_mcp.orders.cart import MAX_QUANTITY
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.service import Commerce
from shine_mcp.orders.subscribing import MAX_WEEKS, MIN_WEEKS, Plan, RoutinePlan, Swap
from shine_mcp.orders.views import SIMULATION_NOTICE
from shine_mcp.services import Services
from shine_mcp.store.subscriptions import Subscription
from shine_mcp.tools._confirm import Confirm, needs_confirmation
from shine_mcp.tools.checkout import ProductId, VariantId, refusals

SubscriptionId = Annotated[
    str,
    Field(
        pattern=r"^sub_[0-9a-f]{20}$",
        description="A subscription id such as sub_… (list_subscriptions lists yours).",
    ),
]
Weeks = Annotated[
    int | None,
    Field(ge=MIN_WEEKS, le=MAX_WEEKS, description="Deliver every this many weeks."),
]
SHOP_META = {TOOL_SCOPE_META: SHOP}
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

_NOTICES = {
    "incomplete": "Not started yet: it starts when the first delivery is paid on its payment page.",
    "past_due": "The last payment did not go through. The payment provider tries again over the next days; "
    "check the card on file so the next refill can be sent.",
    "paused": "Paused: nothing is charged or sent until it is resumed (pause_subscription with resume=true).",
    "canceled": "This subscription has ended; nothing more is charged or sent.",
}


class SubscriptionItem(BaseModel):
    product_id: str
    variant_id: str | None
    name: str
    quantity: int
    unit_price: Money = Field(description="Per delivery, after the subscription discount.")


class SubscriptionView(BaseModel):
    subscription_id: str
    status: Literal["incomplete", "active", "paused", "past_due", "canceled"]
    items: list[SubscriptionItem]
    interval_weeks: int
    discount_percent: int
    amount_per_delivery: Money
    next_delivery: datetime | None = Field(
        description="When the next refill is charged and sent; none when ended or paused."
    )
    paid_through: datetime | None = Field(description="The end of the period already paid for.")
    cancels_at_period_end: bool
    checkout_url: str | None = Field(description="The payment page, while the first delivery is unpaid.")
    simulated: bool
    notice: str | None = None


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionView]


class SubscribeResult(BaseModel):
    subscription: SubscriptionView
    checkout_url: str | None = Field(
        description="Give this to the shopper: the first delivery is paid there."
    )
    interval_basis: str = Field(description="How the suggested interval was worked out.")
    reused: bool = Field(description="The same subscription was asked for before: same one, same link.")
    notice: str | None = None


def with_next_refill(sub: Subscription) -> SubscriptionView:
    """After an interval change: the next refill keeps the date already planned, the new interval runs from it."""
    view = subscription_view(sub)
    if sub.next_delivery is not None:
        said = (
            f"Your next refill still comes on {sub.next_delivery:%-d %B %Y}; after it, one every "
            f"{sub.interval_weeks} weeks."
        )
        view.notice = f"{said} {view.notice}" if view.notice else said
    return view


def subscription_view(sub: Subscription) -> SubscriptionView:
    amount = sum(int(i["unit_price_minor"]) * int(i["quantity"]) for i in sub.items)
    notice = _NOTICES.get(sub.status)
    if sub.status == "active" and sub.cancel_at_period_end:
        notice = "Cancelled: no more refills after the period already paid for."
    if sub.gateway == "simulated":
        notice = f"{notice} {SIMULATION_NOTICE}" if notice else SIMULATION_NOTICE
    return SubscriptionView(
        subscription_id=sub.id,
        status=sub.status,
        items=[
            SubscriptionItem(
                product_id=i["product_id"],
                variant_id=i.get("variant_id"),
                name=f"{i.get('brand') or ''} {i.get('name') or ''}".strip(),
                quantity=int(i["quantity"]),
                unit_price=Money.of(int(i["unit_price_minor"]), sub.currency),
            )
            for i in sub.items
        ],
        interval_weeks=sub.interval_weeks,
        discount_percent=sub.discount_percent,
        amount_per_delivery=Money.of(amount, sub.currency),
        next_delivery=sub.next_delivery,
        paid_through=sub.current_period_end,
        cancels_at_period_end=sub.cancel_at_period_end,
        checkout_url=sub.checkout_url if sub.status == "incomplete" else None,
        simulated=sub.gateway == "simulated",
        notice=notice,
    )


def _describe(plan: Plan) -> str:
    price = format_money(plan.amount_minor, plan.variant.currency)
    saving = f", {plan.discount_percent} % off the catalog price" if plan.discount_percent else ""
    suggested = (
        f" (suggested: {plan.suggestion.basis})"
        if plan.interval_weeks == plan.suggestion.weeks
        else f" (the suggestion was every {plan.suggestion.weeks} weeks: {plan.suggestion.basis})"
    )
    return (
        f"This starts a refill subscription: {plan.quantity} × {plan.product.brand} {plan.name}, delivered "
        f"every {plan.interval_weeks} weeks{suggested}, for {price} each delivery{saving}, charged to the "
        "same card each time until it is cancelled. It can be skipped, paused or cancelled at any time."
    )


def _describe_routine(plan: RoutinePlan) -> str:
    price = format_money(plan.amount_minor, plan.currency)
    products = ", ".join(f"1 × {line.product.brand} {line.name}" for line in plan.lines)
    saving = f", {plan.discount_percent} % off the catalog prices" if plan.discount_percent else ""
    suggested = (
        f" (suggested: {plan.short_basis})"
        if plan.interval_weeks == plan.suggested_weeks
        else f" (the suggestion was {plan.short_basis})"
    )
    longer = plan.lasting_longer
    extra = (
        " "
        + " and ".join(f"{line.product.brand} {line.name}" for line in longer)
        + f" {'lasts' if len(longer) == 1 else 'last'} at least twice as long, so "
        + ("it" if len(longer) == 1 else "they")
        + " may pile up: skip a delivery now and then, or leave "
        + ("it" if len(longer) == 1 else "them")
        + " out."
        if longer
        else ""
    )
    return (
        f"This starts one refill subscription for the routine: {products}, sent together every "
        f"{plan.interval_weeks} weeks{suggested}, for {price} each delivery{saving}, one charge to the same "
        "card each time until it is cancelled. It can be skipped, paused or cancelled at any time." + extra
    )


def _describe_swap(swap: Swap, subscription_id: str) -> str:
    currency = swap.subscription.currency
    if swap.due_now_minor:
        money = f"{format_money(swap.due_now_minor, currency)} is charged now for the rest of this period"
    elif swap.credit_minor:
        money = (
            f"{format_money(swap.credit_minor, currency)} for the rest of this period is taken off "
            "the next charges"
        )
    else:
        money = "nothing more is charged now"
    return (
        f"This swaps subscription {subscription_id} to {swap.plan.product.brand} {swap.plan.name} "
        f"at {format_money(swap.plan.amount_minor, currency)} each delivery from now on; {money}."
    )


def _describe_cancel(sub: Subscription) -> str:
    view = subscription_view(sub)
    until = f" on {sub.current_period_end:%d %B %Y}" if sub.current_period_end else ""
    items = ", ".join(f"{i.quantity} × {i.name}" for i in view.items)
    return (
        f"This cancels your refill subscription {sub.id} ({items}, every {sub.interval_weeks} "
        f"weeks): it ends{until}, at the end of the period already paid for, and nothing more is "
        "charged."
    )


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ENDS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)


class SubscriptionTools:
    """The refill subscription tools of one server and the commerce service (subscriptions, gateway) they
    share."""

    def __init__(self, services: Services, shop: Commerce) -> None:
        self.settings = services.settings
        self.shop = shop

    async def subscribe(
        self,
        ctx: Context,
        product_id: ProductId,
        quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, description="How many each delivery.")] = 1,
        variant_id: VariantId = None,
        interval_weeks: Weeks = None,
        confirm: Confirm = False,
    ) -> SubscribeResult:
        """Start a "subscribe and save" refill: the product delivered and charged every few weeks.

        Use it when the shopper wants a product they use up delivered regularly.

        Without interval_weeks, the interval is suggested from the product's size and daily use (the answer
        says how). Call it without confirm first: that starts nothing and says the product, interval and
        price; after the shopper says yes, call again with the same arguments and confirm=true, then give
        them `checkout_url`, where the first delivery is paid."""
        caller = current_user(ctx, self.settings)
        with refusals():
            plan = await self.shop.subscriptions.plan(product_id, quantity, variant_id, interval_weeks)
            if confirm is not True:
                raise needs_confirmation("subscribe", _describe(plan))
            started = await self.shop.subscriptions.start(caller.user_id, plan)
        view = subscription_view(started.subscription)
        return SubscribeResult(
            subscription=view,
            checkout_url=started.subscription.checkout_url,
            interval_basis=plan.suggestion.basis,
            reused=started.reused,
            notice=plan.chosen,
        )

    async def subscribe_to_routine(
        self,
        ctx: Context,
        product_ids: Annotated[
            list[ProductId],
            Field(
                min_length=2, max_length=12, description="The routine's products (build_routine lists them)."
            ),
        ],
        interval_weeks: Weeks = None,
        confirm: Confirm = False,
    ) -> SubscribeResult:
        """Refills for a whole routine: one of each product sent together, one charge, every few weeks.

        Use it after build_routine when the shopper wants the routine's products delivered regularly. Without
        interval_weeks, the interval is the shortest of the products' suggested ones (the answer says each).
        Call it without confirm first: that starts nothing and says the products, interval and price; after
        the shopper says yes, call again with the same arguments and confirm=true, then give them
        `checkout_url`, where the first delivery is paid."""
        caller = current_user(ctx, self.settings)
        with refusals():
            plan = await self.shop.subscriptions.plan_routine(list(product_ids), interval_weeks)
            if confirm is not True:
                raise needs_confirmation("subscribe_to_routine", _describe_routine(plan))
            started = await self.shop.subscriptions.start(caller.user_id, plan)
        return SubscribeResult(
            subscription=subscription_view(started.subscription),
            checkout_url=started.subscription.checkout_url,
            interval_basis=plan.basis,
            reused=started.reused,
        )

    async def list_subscriptions(self, ctx: Context) -> SubscriptionList:
        """The shopper's own refill subscriptions, newest first: status, products, interval, price per
        delivery and the next delivery date.

        Use it when the shopper asks about their refills, and to find the id of one to change."""
        caller = current_user(ctx, self.settings)
        return SubscriptionList(
            subscriptions=[subscription_view(s) for s in await self.shop.subscriptions.mine(caller.user_id)]
        )

    async def update_subscription(
        self,
        ctx: Context,
        subscription_id: SubscriptionId,
        interval_weeks: Weeks = None,
        quantity: Annotated[
            int | None, Field(ge=1, le=MAX_QUANTITY, description="How many each delivery from now on.")
        ] = None,
        skip_next_delivery: Annotated[
            bool,
            Field(description="Skip the next delivery (and its charge) only; the one after comes as usual."),
        ] = False,
        swap_to_product_id: Annotated[
            str | None,
            Field(
                max_length=60,
                description="Deliver this product (prd_…) instead from now on; with swap_to_variant_id for "
                "another size or shade. The price difference for the rest of the period is charged or "
                "credited now.",
            ),
        ] = None,
        swap_to_variant_id: VariantId = None,
        confirm: Annotated[
            bool,
            Field(
                description="Only for a swap: leave it out first (the answer says what is charged now); true "
                "after the shopper says yes."
            ),
        ] = False,
    ) -> SubscriptionView:
        """Change one of the shopper's subscriptions: the interval, the quantity, skip the next delivery, or
        swap the product or its variant.

        Use it when the shopper wants refills more or less often, more of them, to skip one, or another
        product. Changes apply from the next delivery on; a swap charges (or credits) the price difference
        for the rest of the period at once, so it needs confirm=true after the shopper's yes."""
        caller = current_user(ctx, self.settings)
        if swap_to_product_id is not None or swap_to_variant_id is not None:
            return await self._swap(
                caller.user_id, subscription_id, swap_to_product_id, swap_to_variant_id, confirm
            )
        with refusals():
            sub = await self.shop.subscriptions.update(
                caller.user_id,
                subscription_id,
                interval_weeks=interval_weeks,
                quantity=quantity,
                skip_next=skip_next_delivery,
            )
        return with_next_refill(sub) if interval_weeks is not None else subscription_view(sub)

    async def _swap(
        self,
        user_id: str,
        subscription_id: str,
        product_id: str | None,
        variant_id: str | None,
        confirm: bool,
    ) -> SubscriptionView:
        with refusals():
            swap = await self.shop.subscriptions.quote_swap(user_id, subscription_id, product_id, variant_id)
            if confirm is not True:
                raise needs_confirmation("update_subscription", _describe_swap(swap, subscription_id))
            sub = await self.shop.subscriptions.swap(user_id, swap)
        return subscription_view(sub)

    async def pause_subscription(
        self,
        ctx: Context,
        subscription_id: SubscriptionId,
        resume: Annotated[bool, Field(description="true resumes a paused subscription.")] = False,
    ) -> SubscriptionView:
        """Pause one of the shopper's subscriptions (nothing is charged or sent) until it is resumed, or
        resume it with resume=true.

        Use it when the shopper wants refills to stop for a while without cancelling, or to restart."""
        caller = current_user(ctx, self.settings)
        with refusals():
            sub = await self.shop.subscriptions.pause(caller.user_id, subscription_id, resume=resume)
        return subscription_view(sub)

    async def cancel_subscription(
        self, ctx: Context, subscription_id: SubscriptionId, confirm: Confirm = False
    ) -> SubscriptionView:
        """Cancel one of the shopper's subscriptions at the end of the period already paid for: that
        delivery still comes, nothing more is charged. Call it without confirm first: that cancels nothing
        and says what would happen; after the shopper says yes, call with confirm=true.

        Use it when the shopper wants no more refills."""
        caller = current_user(ctx, self.settings)
        with refusals():
            if confirm is not True:
                sub = await self.shop.subscriptions.own(caller.user_id, subscription_id)
                if sub.status == "canceled":
                    raise OrderError(f"subscription {sub.id} has already ended")
                raise needs_confirmation("cancel_subscription", _describe_cancel(sub))
            sub = await self.shop.subscriptions.cancel(caller.user_id, subscription_id)
        return subscription_view(sub)


def register(server: MCPServer, services: Services, *, commerce: Commerce | None = None) -> None:
    tools = SubscriptionTools(services, commerce or Commerce(services))
    server.tool(annotations=CHANGE, meta=SHOP_META)(tools.subscribe)
    server.tool(annotations=CHANGE, meta=SHOP_META)(tools.subscribe_to_routine)
    server.tool(annotations=READ_ONLY, meta={TOOL_SCOPE_META: READ})(tools.list_subscriptions)
    server.tool(annotations=CHANGE, meta=SHOP_META)(tools.update_subscription)
    server.tool(annotations=CHANGE, meta=SHOP_META)(tools.pause_subscription)
    server.tool(annotations=ENDS, meta=SHOP_META)(tools.cancel_subscription)


__all__ = ["register", "subscription_view", "ToolError"]
