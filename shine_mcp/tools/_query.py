"""Reading a shopper's free-text search: the phrases that are really filters, and why a product matched.

Plain functions, so the catalog tool stays thin and this stays testable without MCP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shine_mcp.money import format_money
from shine_mcp.store.search import query_terms
from shine_mcp.store.tables import Product, ProductRow, pipe_split
from shine_mcp.vocabulary import CATEGORY_ALIASES

_FREE_FROM = re.compile(r"\b([a-z][a-z ]{1,30}?)[- ]free\b")
_PRICE = re.compile(r"\b(?:under|below|less than|max(?:imum)?|up to|<=?)\s*[$€£]?\s*(\d+(?:\.\d{1,2})?)\b")
_SKIN = re.compile(r"\b(normal|dry|oily|combination|sensitive)\s+skin\b")
_TAG_WORDS = {"vegan": "vegan", "cruelty free": "cruelty_free", "cruelty-free": "cruelty_free"}
# "X-free" phrases that are claims rather than ingredients.
_FREE_FROM_TAGS = {"cruelty": "cruelty_free"}


@dataclass
class Interpretation:
    text: str
    category: str | None = None
    skin_type: str | None = None
    max_price: float | None = None
    exclude: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def terms(self) -> list[str]:
        return query_terms(self.text)


def interpret(query: str) -> Interpretation:
    """Pull filters out of phrases like 'fragrance-free', 'under $25', 'for dry skin', 'moisturizer'."""
    text = " " + query.lower() + " "
    found = Interpretation(text="")

    for phrase, tag in _TAG_WORDS.items():
        if f" {phrase} " in text:
            found.tags.append(tag)
            found.notes.append(f"'{phrase}' → only products claiming {tag.replace('_', '-')}")
            text = text.replace(f" {phrase} ", " ")

    def _free(match: re.Match[str]) -> str:
        word = match.group(1).strip().split()[-1]
        if word in _FREE_FROM_TAGS:
            found.tags.append(_FREE_FROM_TAGS[word])
        else:
            found.exclude.append(word)
            found.notes.append(f"'{word}-free' → excluding {word}")
        return " "

    text = _FREE_FROM.sub(_free, text)

    price = _PRICE.search(text)
    if price:
        found.max_price = float(price.group(1))
        found.notes.append(f"'{price.group(0).strip()}' → max price {price.group(1)}")
        text = text.replace(price.group(0), " ")

    skin = _SKIN.search(text)
    if skin:
        found.skin_type = skin.group(1)
        found.notes.append(f"'{skin.group(0)}' → skin type {skin.group(1)}")
        text = text.replace(skin.group(0), " ")

    categories = {
        cat for alias, cat in CATEGORY_ALIASES.items() if re.search(rf"\b{re.escape(alias)}\b", text)
    }
    if len(categories) == 1:
        found.category = categories.pop()
        for alias in sorted(CATEGORY_ALIASES, key=len, reverse=True):
            text = re.sub(rf"\b{re.escape(alias)}\b", " ", text)
        found.notes.append(f"category {found.category}")

    found.text = re.sub(r"\s+", " ", text).strip()
    return found


def _stem(term: str) -> str:
    return term[: max(4, len(term) - 2)]


def why_matched(
    product: Product | ProductRow,
    *,
    terms: list[str],
    skin_type: str | None,
    concerns: list[str],
    max_price_minor: int | None,
    excluded: list[str],
    tags: list[str],
) -> list[str]:
    """Reasons a person can check against the product page."""
    reasons: list[str] = []
    fields = {
        "brand": product.brand.lower(),
        "name": product.name.lower(),
        "ingredients": product.ingredients_text.lower(),
        "description": product.description.lower(),
    }
    for term in terms:
        where = [name for name, value in fields.items() if _stem(term) in value]
        if where:
            reasons.append(f"'{term}' in {' and '.join(where[:2])}")
    if skin_type and skin_type in pipe_split(product.skin_types):
        reasons.append(f"suited to {skin_type} skin")
    hit = [c for c in concerns if c in pipe_split(product.concerns)]
    if hit:
        reasons.append("targets " + ", ".join(c.replace("_", " ") for c in hit))
    if max_price_minor is not None:
        reasons.append(
            f"{format_money(product.price_minor, product.currency)} is within "
            f"{format_money(max_price_minor, product.currency)}"
        )
    if excluded:
        reasons.append("free of " + ", ".join(excluded))
    for tag in tags:
        reasons.append(f"claims {tag.replace('_', '-')}")
    return reasons
