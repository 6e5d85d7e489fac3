"""Products read from another site's page, added to the catalog with source `web:<domain>`.

The handle comes from the domain and the product's name, so importing the same page again updates the
same product. `admin_import_product_page` (`shine_mcp.tools.browse`) reads the page and calls this."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shine_mcp.money import Money, exponent
from shine_mcp.store.catalog import upsert_products
from shine_mcp.store.db import Database
from shine_mcp.store.records import ProductIn, product_id_for, slugify


@dataclass(frozen=True)
class WebProductPage:
    """What a product page showed, as the catalog keeps it."""

    url: str
    domain: str
    name: str
    brand: str | None
    category: str
    price: Money
    description: str | None
    image_url: str | None
    ingredients_text: str | None


@dataclass(frozen=True)
class ImportedWebProduct:
    product_id: str
    handle: str
    source: str


def web_product(page: WebProductPage) -> ProductIn:
    """The catalog record of a page: the brand falls back to the site, the price is in major units."""
    return ProductIn.model_validate(
        {
            "handle": slugify(f"{page.domain}-{page.name}")[:200],
            "brand": page.brand or page.domain,
            "name": page.name,
            "category": page.category,
            "description": page.description or "",
            "currency": page.price.currency,
            "price": Decimal(page.price.amount_minor).scaleb(-exponent(page.price.currency)),
            "url": page.url,
            "image_url": page.image_url,
            "ingredients": page.ingredients_text or "",
        }
    )


async def import_web_product(db: Database, page: WebProductPage) -> ImportedWebProduct:
    """Add the page's product to the catalog, or update it when the same page was imported before."""
    record = web_product(page)
    source = f"web:{page.domain}"
    await upsert_products(db, [record], source=source)
    return ImportedWebProduct(product_id=product_id_for(record.handle), handle=record.handle, source=source)
