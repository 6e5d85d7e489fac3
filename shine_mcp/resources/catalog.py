"""Catalog resources: one product as `shine://products/{id}`, the categories as `shine://catalog/categories`."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from shine_mcp.services import Services
from shine_mcp.store.catalog import catalog_stats, get_product, get_variants
from shine_mcp.store.views import detail_of
from shine_mcp.vocabulary import CATEGORIES


def register(server: MCPServer, services: Services) -> None:
    @server.resource(
        "shine://products/{product_id}",
        name="product",
        description="One product with its full INCI list and its sizes or shades (variants), as JSON.",
        mime_type="application/json",
    )
    async def product_resource(product_id: str) -> str:
        product = await get_product(services.db, product_id)
        if product is None:
            raise ResourceNotFoundError(f"no product with id '{product_id}'")
        variants = await get_variants(services.db, product.id)
        return detail_of(product, base_url=services.settings.base_url, variants=variants).model_dump_json()

    @server.resource(
        "shine://catalog/categories",
        name="catalog_categories",
        description="The product categories with how many products each has.",
        mime_type="application/json",
    )
    async def categories_resource() -> dict[str, object]:
        stats = await catalog_stats(services.db)
        return {
            "categories": [{"category": c, "products": stats.by_category.get(c, 0)} for c in CATEGORIES],
            "total_products": stats.products,
        }
