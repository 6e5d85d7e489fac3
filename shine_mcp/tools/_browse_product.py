"""A scraped product page (Firecrawl's markdown, raw HTML and metadata) into the facts a shop needs: name,
brand, price, images and the ingredient list, with what was not found said plainly. Page text is data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin

from shine_mcp.knowledge import parse_inci
from shine_mcp.money import MoneyError, to_minor
from shine_mcp.tools._web_safety import clean_text, is_public_http_url, looks_like_instructions

MAX_NAME = 300
MAX_DESCRIPTION = 1_000
MAX_INGREDIENTS_TEXT = 4_000
MAX_MARKDOWN = 200_000  # what is read at all from one page
MAX_IMAGES = 8
_JSON_LD = re.compile(r"<script[^>]+application/ld\+json[^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_SYMBOLS = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₹": "INR", "₩": "KRW"}
_PRICE = re.compile(r"(?<![\w$£€¥₹₩])([$£€¥₹₩])\s?(\d{1,6}(?:[.,]\d{3})*(?:[.,]\d{1,2})?)")
_INGREDIENT_HEADING = re.compile(r"\bingredients?\b(?:\s+list)?\s*:?", re.IGNORECASE)
_IMAGE_MD = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")


@dataclass
class PageFacts:
    name: str | None = None
    brand: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    images: list[str] = field(default_factory=list)
    ingredients: list[str] = field(default_factory=list)
    may_contain: list[str] = field(default_factory=list)
    ingredients_text: str | None = None
    description: str | None = None
    not_found: list[str] = field(default_factory=list)
    addresses_assistants: bool = False


def _products_in_json_ld(html: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in _JSON_LD.findall(html):
        try:
            data = json.loads(block)
        except ValueError:
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            node = stack.pop(0)
            if isinstance(node, dict):
                kind = node.get("@type")
                if kind == "Product" or (isinstance(kind, list) and "Product" in kind):
                    found.append(node)
                stack.extend(v for k, v in node.items() if k == "@graph")
            elif isinstance(node, list):
                stack.extend(node)
    return found


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _price(amount: Any, currency: Any) -> tuple[int, str] | None:
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
        return None
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
        return to_minor(value, currency.strip().upper()), currency.strip().upper()
    except (InvalidOperation, MoneyError, ValueError):
        return None


def _price_in_text(markdown: str) -> tuple[int, str] | None:
    match = _PRICE.search(markdown)
    if match is None:
        return None
    symbol, amount = match.groups()
    if "," in amount and "." not in amount and len(amount.rsplit(",", 1)[1]) == 2:
        amount = amount.replace(",", ".")  # 18,50 €
    return _price(amount.replace(",", ""), _SYMBOLS[symbol])


def _ingredients_in(markdown: str) -> str | None:
    """The text after an 'Ingredients' heading or label, up to the next heading."""
    lines = [line.strip() for line in markdown.splitlines()]
    for i, line in enumerate(lines):
        bare = line.lstrip("#*_ ").rstrip("*_ ")
        match = _INGREDIENT_HEADING.search(bare)
        if match is None or match.start() > 20 or "how to" in bare.lower():
            continue
        rest = bare[match.end() :].strip(" :")
        if len(rest) > 20 and "," in rest:
            return rest
        for following in lines[i + 1 :]:
            if following.startswith("#"):
                break
            if following and "," in following:
                return following
    return None


def extract(page: dict[str, Any], page_url: str) -> PageFacts:
    facts = PageFacts()
    metadata = page.get("metadata") if isinstance(page.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    markdown = str(page.get("markdown") or "")[:MAX_MARKDOWN]
    html = str(page.get("rawHtml") or page.get("html") or "")[:MAX_MARKDOWN]
    product = (_products_in_json_ld(html) or [{}])[0]

    brand = product.get("brand")
    brand = brand.get("name") if isinstance(brand, dict) else brand
    offers = _first(product.get("offers")) if isinstance(_first(product.get("offers")), dict) else {}
    h1 = next((line[2:] for line in markdown.splitlines() if line.startswith("# ")), None)
    facts.name = clean_text(product.get("name") or metadata.get("ogTitle") or h1 or "", MAX_NAME) or None
    facts.brand = clean_text(brand or metadata.get("ogSiteName") or "", MAX_NAME) or None
    price = (
        _price(offers.get("price"), offers.get("priceCurrency"))
        or _price(metadata.get("product:price:amount"), metadata.get("product:price:currency"))
        or _price(metadata.get("og:price:amount"), metadata.get("og:price:currency"))
        or _price_in_text(markdown)
    )
    if price is not None:
        facts.price_minor, facts.currency = price

    candidates: list[Any] = []
    for value in (product.get("image"), metadata.get("ogImage"), metadata.get("og:image")):
        candidates.extend(value if isinstance(value, list) else [value])
    candidates.extend(_IMAGE_MD.findall(markdown))
    for candidate in candidates:
        url = candidate.get("url") if isinstance(candidate, dict) else candidate
        if isinstance(url, str) and url.strip():
            absolute = urljoin(page_url, url.strip())
            if is_public_http_url(absolute) and absolute not in facts.images:
                facts.images.append(absolute)
    facts.images = facts.images[:MAX_IMAGES]

    text = _ingredients_in(markdown)
    if text:
        facts.ingredients_text = clean_text(text, MAX_INGREDIENTS_TEXT)
        parsed = parse_inci(facts.ingredients_text)
        facts.ingredients = [p.name for p in parsed if not p.may_contain]
        facts.may_contain = [p.name for p in parsed if p.may_contain]
    description = product.get("description") or metadata.get("description") or metadata.get("ogDescription")
    facts.description = clean_text(description or "", MAX_DESCRIPTION) or None

    facts.addresses_assistants = looks_like_instructions(markdown) or looks_like_instructions(
        " ".join(str(v) for v in (product.get("description"), metadata.get("description")) if v)
    )
    missing = {
        "name": facts.name,
        "brand": facts.brand,
        "price": facts.price_minor,
        "images": facts.images,
        "ingredient list": facts.ingredients,
    }
    facts.not_found = [f"no {what} found on the page" for what, value in missing.items() if not value]
    return facts
