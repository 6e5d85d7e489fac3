"""Where to buy: which merchant links may be shown and followed, the clicks on them, and the clicks report.

The click-out route (`web_shell/click_out.py`) only ever redirects to a product's stored `buy_url`, and only
when `merchant_link` accepts it for a site the merchant configured (SHINE_AFFILIATE_LINKS); the request
never names a destination, so there is nothing to turn into an open redirect.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Update, func, or_, update
from sqlmodel import col, select

from shine_mcp.clock import aware, utcnow
from shine_mcp.store.chat import ChatSession
from shine_mcp.store.db import Database
from shine_mcp.store.tables import Click, Product, ProductRow, ProductVariant

AffiliateLinks = Mapping[str, Mapping[str, str]]  # site -> query parameters added to its links
Source = Literal["widget", "mcp", "shop", "link"]
SOURCES: tuple[Source, ...] = ("widget", "mcp", "shop", "link")
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_URL = 2000
# A path, query and fragment of printable ASCII: a raw space, newline or backslash (which browsers read as
# a slash) is never passed on; percent-encoded ones stay encoded, so they cannot break the Location header.
_SAFE_REST = re.compile(r"^[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]*$")
_HOST = re.compile(r"^[a-z0-9.-]+$")

COMMISSION = (
    "Affiliate link: this shop may earn a commission if you buy at {merchant}, at no extra cost to you."
)
ELSEWHERE = "Sold by {merchant}, not by this shop: their prices, delivery and returns apply."


@dataclass(frozen=True)
class MerchantLink:
    """Where a "Buy at" link goes: the checked merchant URL with the site's parameters added."""

    merchant: str  # the configured site, e.g. "amazon.com"
    url: str
    affiliate: bool  # the site's links carry parameters (a tag), so the shop may earn from the sale

    @property
    def disclosure(self) -> str:
        return (COMMISSION if self.affiliate else ELSEWHERE).format(merchant=self.merchant)


def site_of(host: str, links: AffiliateLinks) -> str | None:
    """The configured site `host` is, or is a subdomain of; the longest match wins."""
    matches = [site for site in links if host == site or host.endswith("." + site)]
    return max(matches, key=len) if matches else None


def merchant_link(buy_url: str | None, links: AffiliateLinks) -> MerchantLink | None:
    """The link to follow for `buy_url`, or None when it must not be followed: not https, userinfo, a port,
    an address or a host outside the configured sites (look-alikes in other scripts included, since only
    plain ASCII hosts pass), control characters, spaces or backslashes anywhere."""
    if not buy_url or not links or len(buy_url) > MAX_URL or not buy_url.startswith("https://"):
        return None
    rest = buy_url.removeprefix("https://")
    end = min((i for i in (rest.find(mark) for mark in "/?#") if i >= 0), default=len(rest))
    host, tail = rest[:end].lower(), rest[end:]
    if not _HOST.fullmatch(host) or host.startswith(".") or host.endswith(".") or ".." in host:
        return None  # userinfo (@), ports (:), percent-encoding, IDN look-alikes, brackets all fail here
    if not _SAFE_REST.fullmatch(tail):
        return None
    site = site_of(host, links)
    if site is None:
        return None
    parts = urlsplit("https://" + host + tail)
    if parts.hostname != host or parts.username or parts.password or parts.port:
        return None  # belt and braces: the standard parser must read the same host
    params = dict(links[site])
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    url = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    return MerchantLink(merchant=site, url=url, affiliate=bool(params))


def product_link(
    product: Product | ProductRow, links: AffiliateLinks, variant: ProductVariant | None = None
) -> MerchantLink | None:
    """The product's (or its variant's own) merchant link, when it may be shown."""
    if variant is not None and variant.buy_url:
        return merchant_link(variant.buy_url, links)
    return merchant_link(product.buy_url, links)


def sold_elsewhere_only(product: Product | ProductRow, links: AffiliateLinks) -> bool:
    """Affiliate-only: the shop has none of it to sell itself, and a merchant link to show instead."""
    return product.stock <= 0 and product_link(product, links) is not None


def click_out_path(product_id: str, source: Source, variant_id: str | None = None) -> str:
    """Shine's own click-out route for a product; `web_shell/click_out.py` serves it."""
    query = [("src", source)] + ([("variant", variant_id)] if variant_id else [])
    return f"/out/{quote(product_id, safe='')}?{urlencode(query)}"


def new_click_id() -> str:
    return "clk_" + secrets.token_hex(10)


async def record_click(
    db: Database,
    *,
    product_id: str,
    variant_id: str | None,
    merchant: str,
    source: Source,
    conversation_id: str | None,
    user_id: str | None,
    at: datetime | None = None,
) -> Click:
    """Store one click; a conversation id that is not a plain id is dropped rather than stored."""
    click = Click(
        id=new_click_id(),
        product_id=product_id,
        variant_id=variant_id,
        merchant=merchant,
        source=source,
        conversation_id=conversation_id
        if conversation_id and CONVERSATION_ID.fullmatch(conversation_id)
        else None,
        user_id=user_id,
        created_at=at or utcnow(),
    )
    async with db.session() as session, session.begin():
        session.add(click)
    return click


def _theirs(user_id: str) -> ColumnElement[bool]:
    """Clicks tied to a person: made while signed in, or from one of their chats (a guest's click keeps
    only the chat it came from, and signing in moves that chat to the account)."""
    chats = select(col(ChatSession.id)).where(col(ChatSession.user_id) == user_id)
    return or_(col(Click.user_id) == user_id, col(Click.conversation_id).in_(chats))


async def user_clicks(db: Database, user_id: str) -> list[dict[str, Any]]:
    """For export_my_data: the person's clicks, oldest first."""
    query = select(Click).where(_theirs(user_id)).order_by(col(Click.created_at), col(Click.id))
    async with db.reading() as session:
        clicks = (await session.execute(query)).scalars().all()
    return [
        {
            "id": c.id,
            "at": aware(c.created_at).isoformat(),
            "product_id": c.product_id,
            "variant_id": c.variant_id,
            "merchant": c.merchant,
            "source": c.source,
            "conversation_id": c.conversation_id,
        }
        for c in clicks
    ]


async def forget_user_clicks(db: Database, user_id: str) -> int:
    """On erasure, before the person's chats go: their clicks stay counted for the shop's report, no longer
    linked to them or to their chats."""
    query = update(Click).where(_theirs(user_id)).values(user_id=None, conversation_id=None)
    async with db.session() as session, session.begin():
        result = await session.execute(query.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def unlink_purged_chats_statement() -> Update:
    """For the scheduled purge, after idle chats are deleted: clicks no longer name a widget chat that is
    gone (an MCP client's own conversation ids are not Shine's chats and stay)."""
    chats = select(col(ChatSession.id))
    return (
        update(Click)
        .where(col(Click.conversation_id).startswith("chs_", autoescape=True))
        .where(col(Click.conversation_id).not_in(chats))
        .values(conversation_id=None)
    )


@dataclass(frozen=True)
class ClickCount:
    product_id: str
    brand: str
    name: str
    merchant: str
    by_source: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_source.values())


async def clicks_report(db: Database, since: datetime, until: datetime) -> list[ClickCount]:
    """Clicks per product and source in [since, until), most clicked first; a product since removed from the
    catalog keeps its id with an empty name."""
    query = (
        select(col(Click.product_id), col(Click.merchant), col(Click.source), func.count())
        .where(col(Click.created_at) >= since, col(Click.created_at) < until)
        .group_by(col(Click.product_id), col(Click.merchant), col(Click.source))
    )
    async with db.reading() as session:
        rows = (await session.execute(query)).all()
        ids = sorted({row[0] for row in rows})
        names: dict[str, tuple[str, str]] = {}
        if ids:
            found = await session.execute(
                select(col(Product.id), col(Product.brand), col(Product.name)).where(col(Product.id).in_(ids))
            )
            names = {pid: (brand, name) for pid, brand, name in found.all()}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for product_id, merchant, source, count in rows:
        counts.setdefault((product_id, merchant), {})[source] = int(count)
    report = [
        ClickCount(
            pid, *names.get(pid, ("", "")), merchant=merchant, by_source=dict(sorted(by_source.items()))
        )
        for (pid, merchant), by_source in counts.items()
    ]
    return sorted(report, key=lambda c: (-c.total, c.product_id, c.merchant))


def source_of(value: str | None) -> Source:
    for source in SOURCES:
        if value == source:
            return source
    return "link"


class ClickRow(BaseModel):
    product_id: str
    brand: str = Field(description="Empty when the product has since left the catalog.")
    name: str
    merchant: str = Field(description="The site the clicks went to, e.g. amazon.com.")
    clicks: int
    by_source: dict[str, int] = Field(description="Clicks per source: widget, mcp, shop or link.")


class ClicksReport(BaseModel):
    start: date
    end: date
    clicks: int = Field(description="All clicks in the period.")
    by_source: dict[str, int]
    products: list[ClickRow] = Field(description="Most clicked first.")


def clicks_report_view(start: date, end: date, counts: list[ClickCount]) -> ClicksReport:
    by_source: dict[str, int] = {}
    for count in counts:
        for source, n in count.by_source.items():
            by_source[source] = by_source.get(source, 0) + n
    return ClicksReport(
        start=start,
        end=end,
        clicks=sum(by_source.values()),
        by_source=dict(sorted(by_source.items())),
        products=[
            ClickRow(
                product_id=c.product_id,
                brand=c.brand,
                name=c.name,
                merchant=c.merchant,
                clicks=c.total,
                by_source=c.by_source,
            )
            for c in counts
        ],
    )
