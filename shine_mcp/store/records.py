"""What a catalog entry must look like on the way in, whatever file it came from."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shine_mcp.knowledge import parse_inci
from shine_mcp.money import MoneyError, to_minor
from shine_mcp.store.tables import Product, pipe_join, utcnow
from shine_mcp.vocabulary import Category, Concern, SkinType, Tag

_HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def product_id_for(handle: str) -> str:
    """Ids derive from the handle, so re-importing a catalog updates products instead of duplicating them."""
    return "prd_" + hashlib.sha256(handle.encode()).hexdigest()[:12]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:300]


class ProductIn(BaseModel):
    """One product from an import file; validation errors name the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    handle: Annotated[str, Field(min_length=1, max_length=300)]
    brand: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1, max_length=300)]
    category: Category
    description: str = ""
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")] = "USD"
    price: Annotated[Decimal, Field(gt=0, le=Decimal("1000000"))]
    size: Annotated[str | None, Field(max_length=60)] = None
    url: str | None = None
    image_url: str | None = None
    rating: Annotated[float | None, Field(ge=0, le=5)] = None
    review_count: Annotated[int, Field(ge=0)] = 0
    stock: Annotated[int, Field(ge=0)] = 0
    ingredients: str | list[str] = ""
    skin_types: list[SkinType] = Field(default_factory=list)
    concerns: list[Concern] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)

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
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value or None

    def ingredients_as_text(self) -> str:
        return ", ".join(self.ingredients) if isinstance(self.ingredients, list) else self.ingredients

    def to_row(self, source: str) -> Product:
        price_minor = to_minor(self.price, self.currency)
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
            currency=self.currency,
            size=self.size,
            url=self.url,
            image_url=self.image_url,
            rating=self.rating,
            review_count=self.review_count,
            stock=self.stock,
            ingredients_text=text,
            ingredients=names,
            ingredient_keys=pipe_join(keys),
            skin_types=pipe_join(self.skin_types),
            concerns=pipe_join(self.concerns),
            tags=pipe_join(self.tags),
            created_at=now,
            updated_at=now,
        )
