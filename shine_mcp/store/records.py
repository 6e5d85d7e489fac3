"""What a catalog entry must look like on the way in, whatever file it came from."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shine_mcp.clock import utcnow
from shine_mcp.knowledge import parse_inci
from shine_mcp.money import MoneyError, to_minor
from shine_mcp.store.tables import Product, ProductVariant, default_variant_id, pipe_join
from shine_mcp.vocabulary import Category, Concern, SkinType, Tag

_HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SIZE_OPTIONS = ("size", "volume", "amount")  # option names whose value is a pack size


def product_id_for(handle: str) -> str:
    """Ids derive from the handle, so re-importing a catalog updates products instead of duplicating them."""
    return "prd_" + hashlib.sha256(handle.encode()).hexdigest()[:12]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:300]


def variant_id_for(product_id: str, option_values: list[str]) -> str:
    """A variant's id derives from its product and option values ("Green", "S"), so a re-import updates it;
    a variant without options is the product's default one."""
    if not option_values:
        return default_variant_id(product_id)
    key = product_id + "\x1f" + "\x1f".join(v.strip().lower() for v in option_values)
    return "var_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _http_url(value: str | None) -> str | None:
    if value and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value or None


def _https_url(value: str | None) -> str | None:
    """A merchant page a shopper is sent to: https only, and no spaces or control characters in it."""
    if value and (not value.startswith("https://") or any(c.isspace() or ord(c) < 32 for c in value)):
        raise ValueError("must be an https:// link to the product's page at the merchant")
    return value or None


PixelSize = Annotated[int, Field(ge=1, le=50_000)]


class VariantIn(BaseModel):
    """One variant of a product from an import file: a size or shade with its own SKU, price and stock.
    A missing price is the product's."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    options: dict[str, Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=dict)
    title: Annotated[str | None, Field(max_length=300)] = None
    sku: Annotated[str | None, Field(max_length=100)] = None
    barcode: Annotated[str | None, Field(max_length=60)] = None
    price: Annotated[Decimal | None, Field(gt=0, le=Decimal("1000000"))] = None
    stock: Annotated[int, Field(ge=0)] = 0
    size: Annotated[str | None, Field(max_length=60)] = None
    image_url: str | None = None
    image_width: PixelSize | None = None
    image_height: PixelSize | None = None
    buy_url: Annotated[str | None, Field(max_length=2000)] = None

    @field_validator("image_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("buy_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return _https_url(value)

    @property
    def label(self) -> str:
        return self.title or " / ".join(self.options.values())


class ProductIn(BaseModel):
    """One product from an import file; validation errors name the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    handle: Annotated[str, Field(min_length=1, max_length=300)]
    brand: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1, max_length=300)]
    category: Category
    description: str = ""
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")] = "USD"
    price: Annotated[Decimal, Field(gt=0, le=Decimal("1000000"))]  # with variants: the cheapest one's
    size: Annotated[str | None, Field(max_length=60)] = None
    url: str | None = None
    image_url: str | None = None
    # The picture's size in px: given in the file, or measured at import (`shine catalog import`).
    image_width: PixelSize | None = None
    image_height: PixelSize | None = None
    # The product's page at another merchant (affiliate mode): shown as "Buy at <merchant>" when its site
    # is configured in SHINE_AFFILIATE_LINKS.
    buy_url: Annotated[str | None, Field(max_length=2000)] = None
    rating: Annotated[float | None, Field(ge=0, le=5)] = None
    review_count: Annotated[int, Field(ge=0)] = 0
    stock: Annotated[int, Field(ge=0)] = 0
    ingredients: str | list[str] = ""
    skin_types: list[SkinType] = Field(default_factory=list)
    concerns: list[Concern] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    # Sizes or shades sold separately; none: the product is its own one variant. With variants, the
    # product's price, stock and size come from them.
    variants: Annotated[list[VariantIn], Field(max_length=250)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _price_from_variants(cls, data: Any) -> Any:
        """A product with variants may leave its own price out: the cheapest variant's is used."""
        if not isinstance(data, dict) or data.get("price") not in (None, "") or not data.get("variants"):
            return data
        prices: list[Decimal] = []
        for variant in data["variants"]:
            raw = variant.get("price") if isinstance(variant, dict) else getattr(variant, "price", None)
            try:
                prices.append(Decimal(str(raw)))
            except ArithmeticError:
                continue  # the variant's own validation names it
        return {**data, "price": min(prices)} if prices else data

    @model_validator(mode="after")
    def _variants_fit(self) -> ProductIn:
        seen: set[str] = set()
        for number, variant in enumerate(self.variants, 1):
            if variant.price is not None:
                try:
                    to_minor(variant.price, self.currency)
                except MoneyError as exc:
                    raise ValueError(f"variant {number}: {exc}") from exc
            key = "/".join(v.lower() for v in variant.options.values())
            if key in seen:
                raise ValueError(
                    f"variant {number} repeats the options {variant.label!r}; each variant needs its own"
                )
            seen.add(key)
        return self

    @field_validator("handle")
    @classmethod
    def _handle_is_a_slug(cls, value: str) -> str:
        value = value.lower()
        if not _HANDLE.match(value):
            raise ValueError(
                "use lower-case letters, digits, '-', '_' or '.' (e.g. 'cerave-moisturising-cream')"
            )
        return value

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("price")
    @classmethod
    def _price_fits_currency(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        try:
            to_minor(value, info.data.get("currency", "USD"))
        except MoneyError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("url", "image_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("buy_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return _https_url(value)

    def ingredients_as_text(self) -> str:
        return ", ".join(self.ingredients) if isinstance(self.ingredients, list) else self.ingredients

    def variant_rows(self) -> list[ProductVariant]:
        """The product's variants as rows: its listed ones, or one default variant of its own fields."""
        product_id = product_id_for(self.handle)
        if not self.variants:
            return [
                ProductVariant(
                    id=default_variant_id(product_id),
                    product_id=product_id,
                    position=0,
                    price_minor=to_minor(self.price, self.currency),
                    currency=self.currency,
                    stock=self.stock,
                    size=self.size,
                )
            ]
        return [
            ProductVariant(
                id=variant_id_for(product_id, list(variant.options.values())),
                product_id=product_id,
                position=position,
                title=variant.label,
                options=dict(variant.options),
                sku=variant.sku,
                barcode=variant.barcode,
                price_minor=to_minor(variant.price or self.price, self.currency),
                currency=self.currency,
                stock=variant.stock,
                size=variant.size or _size_option(variant.options) or self.size,
                image_url=variant.image_url,
                image_width=variant.image_width if variant.image_url else None,
                image_height=variant.image_height if variant.image_url else None,
                buy_url=variant.buy_url,
            )
            for position, variant in enumerate(self.variants)
        ]

    def to_row(self, source: str) -> Product:
        variants = self.variant_rows()
        # The product's own picture, else its first variant's, with that picture's size.
        image: ProductIn | ProductVariant = (
            self if self.image_url else next((v for v in variants if v.image_url), self)
        )
        price_minor, price_max_minor = price_range(variants)
        sizes = {v.size for v in variants}
        text = self.ingredients_as_text()
        parsed = [p for p in parse_inci(text) if not p.may_contain]
        names = [p.name for p in parsed]
        keys = {p.name.lower() for p in parsed} | {f"family:{p.family}" for p in parsed if p.family}
        now = utcnow()
        return Product(
            id=product_id_for(self.handle),
            source=source,
            handle=self.handle,
            brand=self.brand,
            name=self.name,
            category=self.category,
            description=self.description,
            price_minor=price_minor,
            price_max_minor=price_max_minor,
            currency=self.currency,
            size=sizes.pop() if len(sizes) == 1 else None,
            url=self.url,
            image_url=image.image_url,
            image_width=image.image_width if image.image_url else None,
            image_height=image.image_height if image.image_url else None,
            buy_url=self.buy_url or next((v.buy_url for v in variants if v.buy_url), None),
            rating=self.rating,
            review_count=self.review_count,
            stock=sum(v.stock for v in variants),
            ingredients_text=text,
            ingredients=names,
            ingredient_keys=pipe_join(keys),
            skin_types=pipe_join(self.skin_types),
            concerns=pipe_join(self.concerns),
            tags=pipe_join(self.tags),
            created_at=now,
            updated_at=now,
        )


def _size_option(options: dict[str, str]) -> str | None:
    return next((v for k, v in options.items() if k.strip().lower().startswith(SIZE_OPTIONS)), None)


def price_range(variants: list[ProductVariant]) -> tuple[int, int]:
    """A product's (price, top of range): over its in-stock variants, or all of them when none is."""
    priced = [v.price_minor for v in variants if v.stock > 0] or [v.price_minor for v in variants]
    return min(priced), max(priced)
