"""Catalog tools: search the shop's products and read one product's full details.

Reading the query's words is `store.search_query`, running the search `store.search`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Generic, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from shine_mcp.advice.inputs import IngredientWords
from shine_mcp.auth.identity import current_user
from shine_mcp.knowledge import load_knowledge
from shine_mcp.money import to_minor_rounded
from shine_mcp.services import Services
from shine_mcp.store.catalog import catalog_generation, get_variants, main_currency
from shine_mcp.store.catalog import get_product as fetch_product
from shine_mcp.store.db import Database
from shine_mcp.store.profiles import record_view
from shine_mcp.store.search import SearchFilters, SearchResult, catalog_brands
from shine_mcp.store.search import search_products as run_search
from shine_mcp.store.search_query import BrandIndex, Interpretation, interpret, why_matched
from shine_mcp.store.tables import ProductVariant
from shine_mcp.store.views import (
    DEMO_NOTICE,
    CompactSchema,
    ProductDetail,
    ProductSummary,
    detail_of,
    summary_of,
)
from shine_mcp.vocabulary import Category, Concern, SkinType

T = TypeVar("T")
log = logging.getLogger("shine.tools.catalog")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


# One page of catalog search results; a shop's web page read by `read_product_page` is `browse.ProductPage`.
# (A comment, not a docstring: a docstring would become the output schema's description.)
class SearchResults(CompactSchema):
    total: int = Field(description="How many products match in all pages.")
    products: list[ProductSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    interpreted: list[str] = Field(description="How the query text was read (filters found in it).")
    notice: str | None = Field(
        default=None, description="Caveats about the data, e.g. indicative demo prices."
    )


def _fingerprint(filters: SearchFilters) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]


def _encode_cursor(offset: int, filters: SearchFilters) -> str:
    raw = json.dumps({"o": offset, "f": _fingerprint(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, filters: SearchFilters) -> int:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, fingerprint = int(raw["o"]), str(raw["f"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ToolError(
            "the cursor is not one search_products returned; repeat the search without it"
        ) from exc
    if fingerprint != _fingerprint(filters) or offset < 0:
        raise ToolError("this cursor belongs to a different search; repeat the search without a cursor")
    return offset


class CatalogFact(Generic[T]):
    """A fact about the whole catalog (main currency, brands): it changes only on import. Read again at
    once after an import in this process (`catalog_generation`), and otherwise at most every `ttl`
    seconds, in the background: until the new value is read the old one serves, so no search waits for
    the read (50 000 products' brands took ~100 ms to read, once a minute, in some shopper's search)."""

    def __init__(
        self, read: Callable[[Database], Awaitable[T]], services: Services, ttl: float = 60.0
    ) -> None:
        self._read, self._services, self._ttl = read, services, ttl
        self._value: T | None = None
        self._read_at = 0.0
        self._generation = -1
        self._reading: asyncio.Task[None] | None = None
        self._hooked = False

    async def get(self) -> T:
        generation = catalog_generation()
        if self._value is None or generation != self._generation:
            await self._refresh(generation)
        elif time.monotonic() - self._read_at > self._ttl and self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._refresh_later(generation))
            if not self._hooked:  # the read finishes before the database closes
                self._services.on_stop(self._drain)
                self._hooked = True
        assert self._value is not None
        return self._value

    async def settled(self) -> None:
        """Wait for a background read under way, if any."""
        if self._reading is not None:
            await asyncio.shield(self._reading)

    async def _drain(self) -> None:
        await self.settled()
        self._hooked = False

    async def _refresh(self, generation: int) -> None:
        value = await self._read(self._services.db)
        self._value, self._read_at, self._generation = value, time.monotonic(), generation

    async def _refresh_later(self, generation: int) -> None:
        try:
            await self._refresh(generation)
        except Exception:  # the old value keeps serving; the next search past the ttl tries again
            log.warning("re-reading a catalog fact failed", exc_info=True)
            self._read_at = time.monotonic()
        finally:
            self._reading = None


async def _brands(db: Database) -> BrandIndex:
    return BrandIndex.of(await catalog_brands(db))


class CatalogTools:
    """The catalog tools of one server and the catalog facts they keep: the main currency, the brands."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.knowledge = load_knowledge()
        self.currencies = CatalogFact(main_currency, services)
        self.brands = CatalogFact(_brands, services)

    async def search_products(
        self,
        query: Annotated[
            str,
            Field(
                max_length=500,
                description=(
                    "Words to look for (product type, ingredient, brand, concern). Phrases such as "
                    "'fragrance-free', 'under $25', 'for dry skin' or 'moisturiser' are read as filters. "
                    "Empty lists the best-rated products."
                ),
            ),
        ] = "",
        category: Category | None = None,
        skin_type: SkinType | None = None,
        concerns: Annotated[
            list[Concern] | None,
            Field(max_length=6, description="Products targeting any of these rank first."),
        ] = None,
        max_price: Annotated[
            float | None,
            Field(gt=0, le=100_000, description="Highest price in the shop's currency (25 = $25.00)."),
        ] = None,
        exclude_ingredients: Annotated[
            IngredientWords | None,
            Field(
                max_length=20,
                description="Ingredients or families to avoid: 'fragrance', 'retinol', 'drying alcohol', 'shea'.",
            ),
        ] = None,
        in_stock_only: bool = False,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        cursor: str | None = None,
    ) -> SearchResults:
        """Find products in the shop's catalog by words and filters.

        Use it when the shopper names a product type, ingredient, brand or concern, a price limit or
        ingredients to avoid. Returns a page of products (id, price, rating, stock) each with why it
        matched, the total, and a cursor for the next page; use get_product for the full INCI list."""
        reading = interpret(query, await self.brands.get() if query.strip() else None)
        excluded_words = sorted(
            {w.strip().lower() for w in (exclude_ingredients or [])} | set(reading.exclude)
        )
        price = max_price if max_price is not None else reading.max_price
        filters = await self._filters(
            reading, excluded_words, category, skin_type, concerns, price, in_stock_only
        )
        offset = _decode_cursor(cursor, filters) if cursor else 0
        result = await run_search(self.services.db, filters, limit=limit, offset=offset, with_variants=True)
        variants = result.variants or {}  # shades to pick, read with the page
        return self._page(reading, filters, excluded_words, result, offset, variants)

    async def _filters(
        self,
        reading: Interpretation,
        excluded_words: list[str],
        category: Category | None,
        skin_type: SkinType | None,
        concerns: list[Concern] | None,
        price: float | None,
        in_stock_only: bool,
    ) -> SearchFilters:
        """The arguments win over what the query's words said."""
        keys, substrings = self.knowledge.exclusion_terms(excluded_words)
        currency = await self.currencies.get()
        return SearchFilters(
            terms=tuple(reading.terms),
            category=category or reading.category,
            skin_type=skin_type or reading.skin_type,
            concerns=tuple(concerns or reading.concerns),
            max_price_minor=to_minor_rounded(price, currency) if price is not None else None,
            currency=currency if price is not None else None,
            exclude_keys=frozenset(keys),
            exclude_substrings=frozenset(substrings),
            required_tags=tuple(sorted(set(reading.tags))),
            in_stock_only=in_stock_only,
        )

    def _page(
        self,
        reading: Interpretation,
        filters: SearchFilters,
        excluded_words: list[str],
        result: SearchResult,
        offset: int,
        variants: dict[str, list[ProductVariant]],
    ) -> SearchResults:
        settings = self.services.settings
        products = [
            summary_of(
                p,
                why_matched(
                    p,
                    terms=list(filters.terms),
                    skin_type=filters.skin_type,
                    concerns=list(filters.concerns),
                    max_price_minor=filters.max_price_minor,
                    excluded=excluded_words,
                    tags=list(filters.required_tags),
                ),
                base_url=settings.base_url,
                links=settings.affiliate_links,
                variants=variants.get(p.id, []),
            )
            for p in result.products
        ]
        end = offset + len(products)
        return SearchResults(
            total=result.total,
            products=products,
            next_cursor=_encode_cursor(end, filters) if end < result.total else None,
            interpreted=reading.notes,
            notice=" ".join(
                text
                for text in (
                    DEMO_NOTICE if any(p.source == "demo" for p in result.products) else None,
                    f"More than {result.total:,} products match: these are the best of them; add a word or "
                    "a filter to narrow the search."
                    if result.more
                    else None,
                )
                if text
            )
            or None,
        )

    async def get_product(
        self,
        ctx: Context,
        product_id: Annotated[str, Field(min_length=1, max_length=60, description="An id such as prd_…")],
    ) -> ProductDetail:
        """Get one product's full details: description, price, stock, its sizes or shades (variants) and the
        complete INCI ingredient list.

        Use it after search_products when the shopper asks what is in a product or whether it suits them.
        Opening a product counts as a view for the caller's recommendations (export_my_data lists views)."""
        services = self.services
        product = await fetch_product(services.db, product_id.strip())
        if product is None:
            raise ToolError(f"no product with id '{product_id}'; search_products lists product ids")
        try:
            caller = current_user(ctx, services.settings)
        except ToolError:  # an anonymous remote reader: the catalog is public, the view is not recorded
            caller = None
        if caller is not None:
            await record_view(services.db, caller.user_id, product.id)  # implicit feedback for advice
        variants = await get_variants(services.db, product.id)
        return detail_of(
            product,
            base_url=services.settings.base_url,
            variants=variants,
            links=services.settings.affiliate_links,
        )


def register(server: MCPServer, services: Services) -> None:
    tools = CatalogTools(services)
    server.tool(annotations=READ_ONLY)(tools.search_products)
    server.tool(annotations=READ_ONLY)(tools.get_product)
