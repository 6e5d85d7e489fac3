"""How a product looks to a client: the pydantic shapes shared by tools and resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shine_mcp.money import Money
from shine_mcp.store.tables import Product, ProductRow, pipe_split

DEMO_NOTICE = (
    "Demo catalog bundled with Shine: prices are indicative and stock is invented. "
    "A merchant replaces it with `shine catalog import`."
)


def compact_nullables(schema: dict[str, Any]) -> None:
    """Write `anyOf: [{type: T}, {type: null}]` as `type: [T, null]`: the same contract in fewer tokens
    for the model, and a client's validator tries one schema per field instead of two."""
    for field_schema in schema.get("properties", {}).values():
        options = field_schema.get("anyOf")
        if not options or len(options) != 2 or {"type": "null"} not in options:
            continue
        other = next(option for option in options if option != {"type": "null"})
        if set(other) == {"type"} and isinstance(other["type"], str):
            del field_schema["anyOf"]
            field_schema["type"] = [other["type"], "null"]


class ProductSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra=compact_nullables)

    id: str = Field(description="Product id (prd_…); pass it to get_product.")
    brand: str
    name: str
    category: str
    price: Money
    size: str | None
    rating: float | None = Field(description="Average rating out of 5, when known.")
    review_count: int
    in_stock: bool
    stock: int
    image_url: str | None
    url: str | None
    skin_types: list[str]
    concerns: list[str]
    tags: list[str] = Field(description="Claims such as fragrance_free, vegan, cruelty_free.")
    matched: list[str] = Field(default_factory=list, description="Why this product matched the search.")


class ProductCard(BaseModel):
    """A product inside advice (a recommendation, a routine step): what a card shows, nothing to re-derive.
    The reasons beside it say why it fits; get_product has the rest."""

    id: str = Field(description="Product id (prd_…); pass it to get_product or add_to_cart.")
    brand: str
    name: str
    category: str
    price: Money
    size: str = Field(description="Pack size, empty when unknown.")
    rating: float = Field(description="Average rating out of 5; 0 when there are no reviews yet.")
    review_count: int
    in_stock: bool
    image_url: str = Field(description="Empty when the catalog has no image.")
    url: str = Field(description="The product page, empty when unknown.")
    tags: list[str] = Field(description="Claims such as fragrance_free, vegan, cruelty_free.")


class ProductDetail(ProductSummary):
    description: str
    ingredients: list[str] = Field(description="The full INCI list in label order, canonical names.")
    ingredients_text: str = Field(description="The ingredient list exactly as printed on the pack.")
    source: str = Field(description="Where the product came from: demo, import:<file>, web:<site>.")
    notice: str | None = None


def summary_of(product: Product | ProductRow, matched: list[str] | None = None) -> ProductSummary:
    return ProductSummary(
        id=product.id,
        brand=product.brand,
        name=product.name,
        category=product.category,
        price=Money.of(product.price_minor, product.currency),
        size=product.size,
        rating=product.rating,
        review_count=product.review_count,
        in_stock=product.stock > 0,
        stock=product.stock,
        image_url=product.image_url,
        url=product.url,
        skin_types=pipe_split(product.skin_types),
        concerns=pipe_split(product.concerns),
        tags=pipe_split(product.tags),
        matched=matched or [],
    )


def card_of(product: Product | ProductRow) -> ProductCard:
    return ProductCard(
        id=product.id,
        brand=product.brand,
        name=product.name,
        category=product.category,
        price=Money.of(product.price_minor, product.currency),
        size=product.size or "",
        rating=product.rating or 0.0,
        review_count=product.review_count,
        in_stock=product.stock > 0,
        image_url=product.image_url or "",
        url=product.url or "",
        tags=pipe_split(product.tags),
    )


def detail_of(product: Product) -> ProductDetail:
    return ProductDetail(
        **summary_of(product).model_dump(),
        description=product.description,
        ingredients=list(product.ingredients),
        ingredients_text=product.ingredients_text,
        source=product.source,
        notice=DEMO_NOTICE if product.source == "demo" else None,
    )
