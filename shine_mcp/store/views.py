"""How a product looks to a client: the pydantic shapes shared by tools and resources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shine_mcp.money import Money
from shine_mcp.store.tables import Product, ProductRow, pipe_split

DEMO_NOTICE = (
    "Demo catalog bundled with Shine: prices are indicative and stock is invented. "
    "A merchant replaces it with `shine catalog import`."
)


class CompactSchema(BaseModel):
    """An output shape whose JSON schema has nested shapes written in place and nullable fields as
    `type: [T, null]` instead of `$ref`s and `anyOf`s. The contract is the same; the schema the model reads
    is shorter, and a client that re-validates each result (the MCP SDK's does, with `jsonschema`) does
    about a third less work for a page of products."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for field_schema in schema.get("properties", {}).values():
            _compact_nullable(field_schema)
            _inline(field_schema, handler)
            if isinstance(field_schema.get("items"), dict):
                _inline(field_schema["items"], handler)
        return schema


def _compact_nullable(field_schema: dict[str, Any]) -> None:
    options = field_schema.get("anyOf")
    if not options or len(options) != 2 or {"type": "null"} not in options:
        return
    other = next(option for option in options if option != {"type": "null"})
    if set(other) == {"type"} and isinstance(other["type"], str):
        del field_schema["anyOf"]
        field_schema["type"] = [other["type"], "null"]


def _inline(field_schema: dict[str, Any], handler: GetJsonSchemaHandler) -> None:
    if "$ref" in field_schema:
        target = handler.resolve_ref_schema({"$ref": field_schema.pop("$ref")})
        field_schema.update({key: value for key, value in target.items() if key not in field_schema})


class ProductSummary(CompactSchema):
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
