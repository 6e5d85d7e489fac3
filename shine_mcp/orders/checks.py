"""What the order tools check before they act, each answering why not (a sentence for the shopper or the
admin) or None: a product only another merchant sells, a report period the report cannot cover. And the
time a report counts from."""

from __future__ import annotations

from datetime import date, datetime

from shine_mcp.clock import utcnow
from shine_mcp.integrations.billing import Billing, SimulatedBilling
from shine_mcp.orders.report import MAX_DAYS
from shine_mcp.store.catalog import get_product
from shine_mcp.store.clicks import AffiliateLinks, sold_elsewhere_only
from shine_mcp.store.db import Database
from shine_mcp.store.views import where_to_buy


async def sold_elsewhere_refusal(
    db: Database, product_id: str, links: AffiliateLinks, *, base_url: str
) -> str | None:
    """An affiliate-only product (no stock of the shop's own, a merchant link): where to buy it instead."""
    if not links:
        return None
    product = await get_product(db, product_id.strip())
    if product is None or not sold_elsewhere_only(product, links):
        return None
    where = where_to_buy(product, links, base_url=base_url)
    if where is None:
        return None
    return (
        f"{product.name} is sold by {where.merchant}, not through this shop's cart; buy it there: {where.url}"
    )


def report_period_refusal(start: date, end: date) -> str | None:
    """Why a report cannot cover `start`..`end` (inclusive days), or None."""
    if end < start:
        return "end is before start; give the first day, then the last"
    if (end - start).days >= MAX_DAYS:
        return f"at most {MAX_DAYS} days per report; split the period"
    return None


def report_now(billing: Billing) -> datetime:
    """The time a report counts upcoming refills from: the simulated billing clock moves on its own."""
    return billing.clock() if isinstance(billing, SimulatedBilling) else utcnow()
