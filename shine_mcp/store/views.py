"""How a product looks to a client: the pydantic shapes shared by tools and resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shine_mcp.money import Money
from shine_mcp.store import packshots
from shine_mcp.store.tables import Product, ProductRow, ProductVariant, pipe_split

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


class ProductImage(CompactSchema):
    """The picture to show for a product, with its size so a page can reserve the space before it loads."""

    url: str = Field(description="Absolute https URL of the picture (http on a local test server).")
    width: int | None = Field(description="Intrinsic width in px, when known.")
    height: int | None = Field(description="Intrinsic height in px, when known.")
    srcset: str | None = Field(description="Other sizes, as an <img srcset> value, when the host has them.")
    generated: bool = Field(
        description="True when the catalog has no photo and this is Shine's drawing of the pack: an "
        "illustration, not a photo of the product."
    )


def _shopify_srcset(url: str) -> str | None:
    """Shopify's CDN resizes on request (`width=`): offer the card and detail sizes."""
    parts = urlsplit(url)
    if parts.hostname != "cdn.shopify.com":
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "width"]
    return ", ".join(
        f"{urlunsplit(parts._replace(query=urlencode([*query, ('width', str(w))])))} {w}w"
        for w in (240, 480, 960)
    )


def image_of(product: Product | ProductRow, base_url: str = "") -> ProductImage:
    """The merchant's own picture when the catalog has one on https (kept as given; a page served over
    https cannot show an http one), else Shine's packshot of it at `base_url` (relative when empty)."""
    own = product.image_url
    if own and own.startswith("https://"):
        return ProductImage(url=own, width=None, height=None, srcset=_shopify_srcset(own), generated=False)
    return ProductImage(
        url=base_url.rstrip("/") + packshots.packshot_path(product),
        width=packshots.SIZE,
        height=packshots.SIZE,
        srcset=None,  # a vector drawing: one file is sharp at every size
        generated=True,
    )


class ProductSummary(CompactSchema):
    id: str = Field(description="Product id (prd_…); pass it to get_product.")
    brand: str
    name: str
    category: str
    price: Money = Field(description="The lowest price (of its sizes or shades in stock).")
    price_max: Money = Field(description="The top of its price range; equal to price when it has one price.")
    size: str | None
    rating: float | None = Field(description="Average rating out of 5, when known.")
    review_count: int
    in_stock: bool
    stock: int
    image_url: str | None = Field(description="The picture to show (same as image.url).")
    image: ProductImage
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
    image_url: str = Field(
        description="The picture to show: the shop's photo, or Shine's drawing of the pack when it has none."
    )
    url: str = Field(description="The product page, empty when unknown.")
    tags: list[str] = Field(description="Claims such as fragrance_free, vegan, cruelty_free.")


class VariantView(CompactSchema):
    """One size or shade of a product, with its own price and stock."""

    id: str = Field(description="Variant id (var_…); pass it to add_to_cart as variant_id.")
    title: str = Field(description="E.g. 'Green / 50 ml'; empty when the product has one variant.")
    options: dict[str, str] = Field(description="Option name to value, e.g. {'Shade': 'Green'}.")
    price: Money
    in_stock: bool
    stock: int
    size: str | None
    sku: str | None
    barcode: str | None
    image_url: str | None = Field(description="This variant's own picture, when the shop has one.")


def variant_view(variant: ProductVariant) -> VariantView:
    return VariantView(
        id=variant.id,
        title=variant.title,
        options=dict(variant.options),
        price=Money.of(variant.price_minor, variant.currency),
        in_stock=variant.stock > 0,
        stock=variant.stock,
        size=variant.size,
        sku=variant.sku,
        barcode=variant.barcode,
        image_url=variant.image_url,
    )


class ProductDetail(ProductSummary):
    description: str
    variants: list[VariantView] = Field(
        default_factory=list, description="Its sizes or shades in the shop's order; add_to_cart takes one."
    )
    ingredients: list[str] = Field(description="The full INCI list in label order, canonical names.")
    ingredients_text: str = Field(description="The ingredient list exactly as printed on the pack.")
    source: str = Field(description="Where the product came from: demo, import:<file>, web:<site>.")
    notice: str | None = None


def summary_of(
    product: Product | ProductRow, matched: list[str] | None = None, *, base_url: str = ""
) -> ProductSummary:
    """`base_url` makes the image URL absolute (tool results); pages of Shine's own may leave it out."""
    image = image_of(product, base_url)
    return ProductSummary(
        id=product.id,
        brand=product.brand,
        name=product.name,
        category=product.category,
        price=Money.of(product.price_minor, product.currency),
        price_max=Money.of(max(product.price_minor, product.price_max_minor or 0), product.currency),
        size=product.size,
        rating=product.rating,
        review_count=product.review_count,
        in_stock=product.stock > 0,
        stock=product.stock,
        image_url=image.url,
        image=image,
        url=product.url,
        skin_types=pipe_split(product.skin_types),
        concerns=pipe_split(product.concerns),
        tags=pipe_split(product.tags),
        matched=matched or [],
    )


def card_of(product: Product | ProductRow, *, base_url: str = "") -> ProductCard:
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
        image_url=image_of(product, base_url).url,
        url=product.url or "",
        tags=pipe_split(product.tags),
    )


def detail_of(
    product: Product, *, base_url: str = "", variants: Sequence[ProductVariant] = ()
) -> ProductDetail:
    return ProductDetail(
        **summary_of(product, base_url=base_url).model_dump(),
        description=product.description,
        variants=[variant_view(v) for v in variants],
        ingredients=list(product.ingredients),
        ingredients_text=product.ingredients_text,
        source=product.source,
        notice=DEMO_NOTICE if product.source == "demo" else None,
    )
