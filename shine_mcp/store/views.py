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
from shine_mcp.store.clicks import AffiliateLinks, Source, click_out_path, product_link
from shine_mcp.store.tables import Product, ProductRow, ProductVariant, pipe_split

DEMO_NOTICE = (
    "Demo catalog bundled with Shine: prices are indicative and stock is invented. "
    "A merchant replaces it with `shine catalog import`."
)


class CompactSchema(BaseModel):
    """An output shape whose JSON schema has nested shapes written in place instead of `$ref`s: the contract
    is the same, and a client that re-validates each result (the MCP SDK's does, with `jsonschema`) resolves
    no references for a page of products. Nullable fields keep pydantic's `anyOf: [{type: T}, {type: null}]`:
    a `type: [T, null]` array is legal JSON Schema, but clients that map schemas onto a single-`type`
    dialect (Gemini's function declarations) reject it, and the Inspector's `--strict` flags it."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        for field_schema in schema.get("properties", {}).values():
            _inline(field_schema, handler)
            if isinstance(field_schema.get("items"), dict):
                _inline(field_schema["items"], handler)
        return schema


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
    https cannot show an http one), with its size when the import measured it or the file gave it, else
    Shine's packshot of it at `base_url` (relative when empty)."""
    own = product.image_url
    if own and own.startswith("https://"):
        sized = product.image_width is not None and product.image_height is not None
        return ProductImage(
            url=own,
            width=product.image_width if sized else None,
            height=product.image_height if sized else None,
            srcset=_shopify_srcset(own),
            generated=False,
        )
    return ProductImage(
        url=base_url.rstrip("/") + packshots.packshot_path(product),
        width=packshots.SIZE,
        height=packshots.SIZE,
        srcset=None,  # a vector drawing: one file is sharp at every size
        generated=True,
    )


class WhereToBuy(CompactSchema):
    """A merchant that sells this product (affiliate mode): show the link with its disclosure beside it."""

    url: str = Field(
        description="Shine's click-out link (/out/…): it records the click and opens the merchant."
    )
    merchant: str = Field(
        description="The merchant's site, e.g. amazon.com: label the link 'Buy at <merchant>'."
    )
    disclosure: str = Field(
        description="Show this line with the link, always: it says who sells and who earns."
    )


def where_to_buy(
    product: Product | ProductRow,
    links: AffiliateLinks,
    *,
    base_url: str = "",
    variant: ProductVariant | None = None,
    source: Source = "mcp",
) -> WhereToBuy | None:
    """The product's "Buy at" link, when it has a merchant page on a configured site; else None."""
    link = product_link(product, links, variant)
    if link is None:
        return None
    path = click_out_path(product.id, source, variant.id if variant is not None and variant.buy_url else None)
    return WhereToBuy(url=base_url.rstrip("/") + path, merchant=link.merchant, disclosure=link.disclosure)


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
    where_to_buy: WhereToBuy | None = Field(
        default=None, description="This size or shade at a merchant, when it has its own merchant page."
    )


def variant_view(variant: ProductVariant, where: WhereToBuy | None = None) -> VariantView:
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
        where_to_buy=where,
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
    where_to_buy: WhereToBuy | None = Field(
        default=None,
        description="A merchant selling it elsewhere; when in_stock is false this is the way to buy it "
        "(add_to_cart refuses it).",
    )
    variants: list[VariantView] = Field(
        default_factory=list,
        description="Its sizes or shades, when it has several (empty when it has one); pass one's id to "
        "add_to_cart as variant_id.",
    )


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
    product: Product | ProductRow,
    matched: list[str] | None = None,
    *,
    base_url: str = "",
    links: AffiliateLinks | None = None,
    variants: Sequence[ProductVariant] = (),
) -> ProductSummary:
    """`base_url` makes the image URL absolute (tool results); pages of Shine's own may leave it out.
    `links`: SHINE_AFFILIATE_LINKS, for the product's where_to_buy. `variants`: its sizes or shades, listed
    when there are several."""
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
        where_to_buy=where_to_buy(product, links, base_url=base_url) if links else None,
        variants=variant_views(product, variants, base_url=base_url, links=links)
        if len(variants) > 1
        else [],
    )


def variant_views(
    product: Product | ProductRow,
    variants: Sequence[ProductVariant],
    *,
    base_url: str = "",
    links: AffiliateLinks | None = None,
) -> list[VariantView]:
    return [
        variant_view(
            v, where_to_buy(product, links, base_url=base_url, variant=v) if links and v.buy_url else None
        )
        for v in variants
    ]


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
    product: Product,
    *,
    base_url: str = "",
    variants: Sequence[ProductVariant] = (),
    links: AffiliateLinks | None = None,
) -> ProductDetail:
    return ProductDetail(
        **summary_of(product, base_url=base_url, links=links).model_dump(exclude={"variants"}),
        description=product.description,
        variants=variant_views(product, variants, base_url=base_url, links=links),
        ingredients=list(product.ingredients),
        ingredients_text=product.ingredients_text,
        source=product.source,
        notice=DEMO_NOTICE if product.source == "demo" else None,
    )
