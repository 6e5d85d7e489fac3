"""Reading a search the way a shopper types it: the phrases that are really filters ('fragrance-free',
'under $25', 'for dry skin', a category or concern), the brand it names, and why a product matched.

Running the search is `store.search`; this only turns words into its filters and explains the results.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from shine_mcp.money import format_money
from shine_mcp.store.search import query_terms
from shine_mcp.store.tables import Product, ProductRow, pipe_split
from shine_mcp.vocabulary import Kind, Synonym, normalise, search_phrases

_FREE_FROM = re.compile(r"\b([a-z][a-z ]{1,30}?) free\b(?!\s+(?:of|from)\b)")
# "without alcohol", "no fragrance", "free of parabens": one word, two when the second names what the
# first qualifies ("essential oils", "drying alcohol", "shea butter", "salicylic acid").
_WITHOUT = re.compile(
    r"\b(?:without|free of|free from|no|avoid|avoiding)\s+"
    r"([a-z][a-z']+(?:\s+(?:alcohols?|oils?|butter|acids?|extracts?|fragrances?|perfume))?)\b"
)
_PRICE = re.compile(r"\b(?:under|below|less than|max(?:imum)?|up to|<=?)\s*[$€£]?\s*(\d+(?:\.\d{1,2})?)\b")
# Words in a request that name no product, brand or ingredient: searched for, they would match nothing.
_FILLER = frozenset({"something", "anything", "product", "products", "stuff", "thing", "things", "skincare"})
_NOT_INGREDIENTS = frozenset({"more", "longer", "need", "matter", "problem", "idea", "other", "budget"})
# "X-free" phrases that are claims rather than ingredients.
_FREE_FROM_TAGS = {"cruelty": "cruelty_free"}


def _phrase_pattern(phrases: list[str]) -> re.Pattern[str]:
    """Whole phrases, longest first so 'sun serum' wins over 'serum', with an optional plural."""
    ordered = sorted(set(phrases), key=lambda p: (-len(p), p))
    return re.compile(r"\b(" + "|".join(re.escape(p) for p in ordered) + r")(?:e?s)?\b")


def _table(kind: Kind, skip: tuple[str, ...] = ()) -> tuple[re.Pattern[str], dict[str, Synonym]]:
    phrases = {s.phrase: s for s in search_phrases(kind) if not s.phrase.endswith(skip)}
    return _phrase_pattern(list(phrases)), phrases


# 'fragrance-free' and 'alcohol-free' exclude the ingredients themselves (stricter than the label's claim).
_TAGS = _table("tag", skip=(" free",))
_CATEGORIES = _table("category")
_CONCERNS = _table("concern")
_SKIN_WORDS = {s.phrase.removesuffix(" skin"): s.means for s in search_phrases("skin_type")}
_SKIN = re.compile(
    r"\b(?:for\s+)?("
    + "|".join(re.escape(w) for w in sorted(_SKIN_WORDS, key=len, reverse=True))
    + r")\s+skin\b"
)


@dataclass
class Interpretation:
    text: str
    category: str | None = None
    skin_type: str | None = None
    concerns: list[str] = field(default_factory=list)
    max_price: float | None = None
    exclude: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def terms(self) -> list[str]:
        return query_terms(self.text)


def _label(value: str) -> str:
    return value.replace("_", " ")


def _cut(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " + text[match.end() :]


def interpret(query: str, brands: BrandIndex | None = None) -> Interpretation:
    """Pull filters out of phrases like 'fragrance-free', 'without alcohol', 'under $25', 'for dry skin',
    'moisturizer' or 'hyperpigmentation'; what is left is searched for as words.

    When the query names one of `brands`, a product word ('serum' in 'skin1004 sun serum') is part of a
    product's name more often than a category, so it stays a search word and ranks that product first."""
    text = " " + normalise(query) + " "
    found = Interpretation(text="")

    tag_pattern, tag_phrases = _TAGS
    while match := tag_pattern.search(text):
        tag = tag_phrases[match.group(1)].means
        if tag not in found.tags:
            found.tags.append(tag)
            found.notes.append(f"'{match.group(0)}' → only products claiming {_label(tag)}")
        text = _cut(text, match)

    def _free(match: re.Match[str]) -> str:
        word = match.group(1).strip().split()[-1]
        if word in _FREE_FROM_TAGS:
            found.tags.append(_FREE_FROM_TAGS[word])
        else:
            found.exclude.append(word)
            found.notes.append(f"'{word}-free' → excluding {word}")
        return " "

    text = _FREE_FROM.sub(_free, text)

    def _without(match: re.Match[str]) -> str:
        words = match.group(1)
        if words in _NOT_INGREDIENTS:
            return match.group(0)
        found.exclude.append(words)
        found.notes.append(f"'{match.group(0)}' → excluding {words}")
        return " "

    text = _WITHOUT.sub(_without, text)

    price = _PRICE.search(text)
    if price:
        found.max_price = float(price.group(1))
        found.notes.append(f"'{price.group(0).strip()}' → max price {price.group(1)}")
        text = _cut(text, price)

    skin = _SKIN.search(text)
    if skin:
        found.skin_type = _SKIN_WORDS[skin.group(1)]
        found.notes.append(f"'{skin.group(0).strip()}' → skin type {found.skin_type}")
        text = _cut(text, skin)

    brand = brands.named_in(text) if brands is not None else None
    if brand is not None:  # its words are searched, never read as a category or a concern ('Glow Recipe')
        text = text.replace(f" {normalise(brand)} ", " ")
    category_pattern, category_phrases = _CATEGORIES
    matches = list(category_pattern.finditer(text))
    categories = {category_phrases[m.group(1)].means for m in matches}
    if brand is not None and categories:
        said = ", ".join(f"'{m.group(0)}'" for m in matches)
        found.notes.append(f"{said} searched as part of a {brand} product's name")
    elif len(categories) == 1:
        found.category = categories.pop()
        text = category_pattern.sub(" ", text)
        found.notes.append(f"category {_label(found.category)}")

    concern_pattern, concern_phrases = _CONCERNS
    for match in concern_pattern.finditer(text):
        synonym = concern_phrases[match.group(1)]
        if synonym.means not in found.concerns:
            found.concerns.append(synonym.means)
            found.notes.append(f"'{match.group(0)}' → products for {_label(synonym.means)}")
        if synonym.note and synonym.note not in found.notes:
            found.notes.append(synonym.note)
    text = concern_pattern.sub(" ", text)

    words = [w for w in text.split() if w not in _FILLER]
    found.text = " ".join(([normalise(brand)] if brand else []) + words)
    return found


@dataclass(frozen=True)
class BrandIndex:
    """The catalog's brands by their normalised words ('la roche posay' -> 'La Roche-Posay')."""

    names: dict[str, str]
    longest: int  # words in the longest name

    @classmethod
    def of(cls, names: Iterable[str]) -> BrandIndex:
        index = {normalise(name): name for name in names if normalise(name)}
        return cls(index, max((len(key.split()) for key in index), default=0))

    def named_in(self, text: str) -> str | None:
        """The longest brand named in the text: its runs of words are looked up, so many brands cost nothing."""
        tokens = text.split()
        for size in range(min(self.longest, len(tokens)), 0, -1):
            for start in range(len(tokens) - size + 1):
                brand = self.names.get(" ".join(tokens[start : start + size]))
                if brand is not None:
                    return brand
        return None


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
