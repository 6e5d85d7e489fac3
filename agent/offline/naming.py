"""Which product a shopper means when they name it ("the SKIN1004 sun serum", "the CeraVe cream"): the
words of the reference matched against each product's brand and name. One product is meant when it
carries more of those words than any other (or all of them, with nothing else in its name); when two or
more match as well, the shopper is asked which."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"[a-z0-9]+")
# Words that say nothing about which product: articles, pointers and the verbs around a reference.
_NOT_NAMES = frozenset(
    ["a", "an", "the", "this", "that", "these", "those", "it", "one", "ones", "from", "by", "of", "to", "in"]
    + ["my", "me", "i", "please", "some", "also", "just", "and", "or", "with", "for"]
)
_PREFIX = 6  # "moisturiser" ~ "moisturizing", "cleanser" ~ "cleansing": one stem, two spellings


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower().replace("’", "'")) if t not in _NOT_NAMES]


def _same(word: str, label_word: str) -> bool:
    if word == label_word or word.rstrip("s") == label_word.rstrip("s"):
        return True
    return len(word) >= _PREFIX and len(label_word) >= _PREFIX and word[:_PREFIX] == label_word[:_PREFIX]


def label(product: dict[str, Any]) -> str:
    return " ".join(str(p) for p in (product.get("brand"), product.get("name")) if p)


@dataclass
class Resolution:
    """`meant`: the one product named; `candidates`: the products that match equally well (ask which);
    both empty when no product carries any of the words."""

    meant: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    covered: bool = False  # the product(s) found carry every word of the reference

    @property
    def ambiguous(self) -> bool:
        return self.meant is None and len(self.candidates) > 1


def resolve(words: list[str], products: list[dict[str, Any]]) -> Resolution:
    """The product among `products` that `words` name (see the module's docstring)."""
    wanted = list(dict.fromkeys(w for w in words if w not in _NOT_NAMES))
    if not wanted or not products:
        return Resolution()
    scored: list[tuple[int, int, dict[str, Any]]] = []
    for product in products:
        own = tokens(label(product))
        kind = tokens(str(product.get("category") or "").replace("_", " "))  # "the SKIN1004 sunscreen"
        hits = sum(any(_same(w, t) for t in own + kind) for w in wanted)
        extra = sum(not any(_same(w, t) for w in wanted) for t in own)
        scored.append((hits, extra, product))
    best = max(hits for hits, _, _ in scored)
    if best == 0:
        return Resolution()
    top = [(extra, p) for hits, extra, p in scored if hits == best]
    if len(top) == 1:
        return Resolution(meant=top[0][1], covered=best == len(wanted))
    exact = [p for extra, p in top if extra == 0]  # "the CeraVe Moisturizing Cream", not "… with Pump"
    if len(exact) == 1 and best == len(wanted):
        return Resolution(meant=exact[0], covered=True)
    return Resolution(candidates=[p for _, p in top], covered=best == len(wanted))
