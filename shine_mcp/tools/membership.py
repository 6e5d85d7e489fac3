"""Premium membership tools: join (monthly or yearly), see what premium gives and one's own membership, switch
plan (an upgrade prorated at once, a downgrade from the end of the paid period), cancel, and the page where a
shopper manages the cards their subscriptions and membership are charged to.

`join_premium` is its own tool rather than a mode of `subscribe`: `subscribe` starts a product refill
(a product, a quantity, an interval in weeks, a delivery every period); a membership has none of those, only
a plan, and delivers nothing. Joining, switching plan and cancelling need the shopper's yes (`confirm`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.auth.identity import current_user
from shine_mcp.auth.policy import READ, SHOP, TOOL_SCOPE_META
from shine_mcp.money import Money, format_money
from shine_mcp.orders.membership import Plan, PlanChange, benefits, is_premium
from shine_mcp.orders.service import Commerce
from shine_mcp.orders.views import SIMULATION_NOTICE
from shine_mcp.services import Services
from shine_mcp.store.memberships import Membership
from shine_mcp.store.subscriptions import list_subscriptions
from shine_mcp.tools._confirm import Confirm, needs_confirmation
from shine_mcp.tools.checkout import refusals

SHOP_META = {TOOL_SCOPE_META: SHOP}
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
PlanChoice = Annotated[Literal["monthly", "yearly"], Field(description="monthly or yearly.")]


class PlanPrice(BaseModel):
    plan: Literal["monthly", "yearly"]
    price: Money


class PremiumView(BaseModel):
    premium: bool = Field(description="Whether the caller gets the premium benefits right now.")
    status: Literal["none", "incomplete", "active", "past_due", "canceled"]
    plan: Literal["monthly", "yearly"] | None
    price: Money | None = Field(description="What the current plan costs each period.")
    renews_on: datetime | None = Field(description="The next charge; none once cancelled.")
    ends_on: datetime | None = Field(description="When premium ends (cancelled at the period's end).")
    switching_to: Literal["monthly", "yearly"] | None = Field(
        description="A plan booked to start at the end of the paid period."
    )
    benefits: list[str] = Field(description="What premium gives.")
    plans: list[PlanPrice]
    checkout_url: str | None = Field(description="The payment page, while the first payment is not made.")
    simulated: bool
    notice: str | None = None


class PlanSwitch(BaseModel):
    membership: PremiumView
    charged_now: Money = Field(description="Charged at once (an upgrade's prorated difference).")


class PaymentMethodsLink(BaseModel):
    url: str = Field(description="Give this to the shopper: there they add, remove or change their cards.")
    simulated: bool


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ENDS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)
LINK = ToolAnnotations(read_only_hint=True, open_world_hint=True)


class MembershipTools:
    """The premium membership tools of one server and the commerce service (gateway, memberships) they share."""

    def __init__(self, services: Services, shop: Commerce) -> None:
        self.services = services
        self.settings = services.settings
        self.shop = shop
        self.members = shop.membership

    def _plans(self) -> list[PlanPrice]:
        currency = self.settings.premium_currency.upper()
        return [
            PlanPrice(plan=p, price=Money.of(self.members.price(p), currency)) for p in ("monthly", "yearly")
        ]

    def _price_text(self, plan: str) -> str:
        return format_money(self.members.price(plan), self.settings.premium_currency.upper())

    def _offer(self) -> str:
        given = " ".join(benefits(self.settings)) or "The shop has not set any member benefits yet."
        return (
            f"Premium costs {self._price_text('monthly')} a month or {self._price_text('yearly')} a year. "
            f"{given} join_premium starts it."
        )

    def _not_a_member(self) -> PremiumView:
        return PremiumView(
            premium=False,
            status="none",
            plan=None,
            price=None,
            renews_on=None,
            ends_on=None,
            switching_to=None,
            benefits=benefits(self.settings),
            plans=self._plans(),
            checkout_url=None,
            simulated=self.shop.gateway().kind == "simulated",
            notice="You are not a premium member. " + self._offer(),
        )

    def _view(self, m: Membership | None) -> PremiumView:
        if m is None:
            return self._not_a_member()
        running = m.status in ("active", "past_due")
        ending = running and m.cancel_at_period_end
        notice = {
            "incomplete": "Not started yet: premium starts when the first payment is made on its payment page.",
            "past_due": "The last payment did not go through; the card is tried again over the next days. "
            "manage_payment_methods opens the page to change it.",
            "canceled": "Your premium membership has ended. " + self._offer(),
        }.get(m.status)
        if ending:
            notice = f"Cancelled: premium ends on {m.current_period_end:%d %B %Y}, nothing more is charged."
        if m.gateway == "simulated":
            notice = f"{notice} {SIMULATION_NOTICE}" if notice else SIMULATION_NOTICE
        return PremiumView(
            premium=is_premium(m, self.shop.now()),
            status=m.status,
            plan=m.plan,
            price=Money.of(self.members.price(m.plan), m.currency),
            renews_on=m.current_period_end if running and not ending else None,
            ends_on=m.current_period_end if ending else None,
            switching_to=m.pending_plan,
            benefits=benefits(self.settings),
            plans=self._plans(),
            checkout_url=m.checkout_url if m.status == "incomplete" else None,
            simulated=m.gateway == "simulated",
            notice=notice,
        )

    async def join_premium(
        self, ctx: Context, plan: PlanChoice = "monthly", confirm: Confirm = False
    ) -> PremiumView:
        """Become a premium member, paid monthly or yearly, until cancelled.

        Use it when the shopper wants premium or its member prices. Call it without confirm first: that starts nothing and says the price and what premium gives; after
        the shopper says yes, call again with confirm=true and give them `checkout_url`, where the first
        payment is made."""
        caller = current_user(ctx, self.settings)
        with refusals():
            if confirm is not True:
                period = "month" if plan == "monthly" else "year"
                given = " ".join(benefits(self.settings))
                raise needs_confirmation(
                    "join_premium",
                    f"This starts a premium membership for {self._price_text(plan)} a {period}, charged to the "
                    f"same card every {period} until it is cancelled (cancelling keeps premium to the end of the "
                    f"period already paid for). {given}",
                )
            m, _reused = await self.members.join(caller.user_id, plan)
        return self._view(m)

    async def premium_membership(self, ctx: Context) -> PremiumView:
        """The shopper's premium membership: whether they are premium now, plan, price, next charge or end
        date, and what premium gives (for non-members: what it would give, and its prices).

        Use it when the shopper asks about premium, member prices or their membership."""
        caller = current_user(ctx, self.settings)
        return self._view(await self.members.latest(caller.user_id))

    async def change_premium_plan(
        self, ctx: Context, plan: PlanChoice, confirm: Confirm = False
    ) -> PlanSwitch:
        """Switch the shopper's premium membership between monthly and yearly.

        Use it when a member wants to pay yearly instead of monthly, or the other way round.

        Monthly → yearly starts the year now and charges the yearly price less the unused part of the month;
        yearly → monthly starts when the paid year ends. Call it without confirm first: that changes nothing
        and says what would be charged and when; after the shopper's yes, call again with confirm=true."""
        caller = current_user(ctx, self.settings)
        with refusals():
            change = await self.members.plan_change(caller.user_id, plan)
            if confirm is not True:
                raise needs_confirmation("change_premium_plan", self._describe_change(change))
            switched = await self.members.change_plan(caller.user_id, change)
        currency = change.membership.currency
        return PlanSwitch(
            membership=self._view(switched), charged_now=Money.of(change.due_now_minor, currency)
        )

    def _describe_change(self, change: PlanChange) -> str:
        currency = change.membership.currency
        if change.kind == "upgrade":
            return (
                f"This switches your premium to yearly now: {self._price_text('yearly')} for a year from "
                f"today, less {format_money(change.credit_minor, currency)} for the unused part of "
                f"this month, so {format_money(change.due_now_minor, currency)} is charged now."
            )
        when = f" on {change.takes_effect:%d %B %Y}" if change.takes_effect else ""
        return (
            f"This switches your premium to monthly when the year already paid for ends{when}: "
            f"nothing is charged now, then {self._price_text('monthly')} a month."
        )

    async def cancel_premium(self, ctx: Context, confirm: Confirm = False) -> PremiumView:
        """Cancel the shopper's premium membership at the end of the period already paid for: premium lasts
        until then, nothing more is charged.

        Use it when a member wants to stop premium. Call it without confirm first; after their yes, with
        confirm=true."""
        caller = current_user(ctx, self.settings)
        with refusals():
            if confirm is not True:
                m = await self.members.latest(caller.user_id)
                until = (
                    f" on {m.current_period_end:%d %B %Y}" if m is not None and m.current_period_end else ""
                )
                if m is None or m.status in ("canceled", "incomplete"):
                    await self.members.cancel(caller.user_id)  # refuses with the reason
                raise needs_confirmation(
                    "cancel_premium",
                    f"This cancels your premium membership: it ends{until}, at the end of the period already "
                    "paid for, and nothing more is charged.",
                )
            return self._view(await self.members.cancel(caller.user_id))

    async def manage_payment_methods(self, ctx: Context) -> PaymentMethodsLink:
        """A link to the page where the shopper adds, removes or changes the cards their refill subscriptions
        and premium membership are charged to.

        Use it when a payment did not go through or the shopper wants to change their card. Give them the
        link; nothing changes until they use it."""
        caller = current_user(ctx, self.settings)
        with refusals():
            refills = await list_subscriptions(self.services.db, caller.user_id)
            customers = [s.provider_customer_id for s in refills if s.provider_customer_id]
            url = await self.members.portal(caller.user_id, customers)
        return PaymentMethodsLink(url=url, simulated=self.shop.gateway().kind == "simulated")


def register(server: MCPServer, services: Services, *, commerce: Commerce | None = None) -> None:
    tools = MembershipTools(services, commerce or Commerce(services))
    server.tool(annotations=CHANGE, meta=SHOP_META)(tools.join_premium)
    server.tool(annotations=READ_ONLY, meta={TOOL_SCOPE_META: READ})(tools.premium_membership)
    server.tool(annotations=CHANGE, meta=SHOP_META)(tools.change_premium_plan)
    server.tool(annotations=ENDS, meta=SHOP_META)(tools.cancel_premium)
    server.tool(annotations=LINK, meta=SHOP_META)(tools.manage_payment_methods)


__all__ = ["register", "Plan"]
