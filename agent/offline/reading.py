"""Reading a shopper's message without a language model: the intent, and the slots tools need
(concerns, skin type, category, budget, product references, quantities), from `plans.json`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from agent.offline.intents import Intent

_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "last": -1,
}  # fmt: skip
# "remove one …", "one less": a cart line's quantity goes down by one (the widget's "−" says "Remove one").
ONE_LESS = re.compile(r"\b(remove|take out|take away|drop|delete)\s+one\b(?!\s+of\b)|\bone (less|fewer)\b")
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a couple of": 2, "a pair of": 2}
_BUDGET = re.compile(
    r"(?:(?:under|below|less than|max(?:imum)?|up to|within|budget(?: of| is)?|have|spend|about|around|<=?)\s*)?"
    r"(?:[$€£]\s*(\d{1,6}(?:\.\d{1,2})?)|(\d{1,6}(?:\.\d{1,2})?)\s*(?:\$|€|£|dollars?|usd|euros?|eur|pounds?|gbp|bucks))",
    re.IGNORECASE,
)
_ATTACHED = re.compile(r"\[photo attached: ((?:upl|att)_[A-Za-z0-9]+)(?:, keep the photo)?\]")
_AVOID = re.compile(
    r"\b(?:allergic to|avoid(?:ing)?|without|free of|can'?t use|cannot use|react(?:s|ing)? to)\s+"
    r"([a-z][a-z -]{1,30}?)(?=[,.;!?]|\s+(?:and|but|or|please|under|for|in)\b|$)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*")
_ACTION_WORDS = frozenset(
    [
        "add",
        "cart",
        "basket",
        "bag",
        "remove",
        "put",
        "safe",
        "pregnant",
        "pregnancy",
        "nursing",
        "breastfeeding",
        "together",
        "combine",
        "mix",
        "ingredients",
        "ingredient",
        "inci",
        "details",
        "take",
        "i'll",
        "order",
        "purchase",
        "grab",
        "subscribe",
        "refills",
        "refill",
    ]
)


@dataclass(frozen=True)
class IntentRule:
    """How plans.json recognises one intent: its patterns (first match wins)."""

    name: Intent
    patterns: tuple[re.Pattern[str], ...]
    needs_attachment_or: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Book:
    """plans.json, compiled."""

    intents: tuple[IntentRule, ...]
    plans: dict[Intent, list[dict[str, Any]]]
    filler: frozenset[str]
    concerns: dict[str, tuple[str, ...]]
    categories: dict[str, tuple[str, ...]]
    skin_types: dict[str, tuple[str, ...]]


@cache
def book() -> Book:
    raw = json.loads((Path(__file__).parent / "plans.json").read_text(encoding="utf-8"))

    def compiled(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in patterns)

    intents = tuple(  # Intent(...) refuses a name the advisor has no answer for
        IntentRule(
            Intent(i["name"]), compiled(i.get("patterns", [])), compiled(i.get("needs_attachment_or", []))
        )
        for i in raw["intents"]
    )
    plans = {Intent(name): steps for name, steps in raw["plans"].items()}
    for rule in intents:
        if rule.name not in plans:
            raise ValueError(f"plans.json: intent {rule.name!r} has no plan")
    return Book(
        intents=intents,
        plans=plans,
        filler=frozenset(raw["filler"]),
        concerns={k: tuple(v) for k, v in raw["concerns"].items()},
        categories={k: tuple(v) for k, v in raw["categories"].items()},
        skin_types={k: tuple(v) for k, v in raw["skin_types"].items()},
    )


@dataclass
class Reading:
    """What one message says, before it is matched against any tool's schema."""

    text: str
    intent: Intent = Intent.UNKNOWN
    concerns: list[str] = field(default_factory=list)
    skin_type: str | None = None
    category: str | None = None
    budget: float | None = None
    quantity: int = 1
    product_ids: list[str] = field(default_factory=list)
    variant_ids: list[str] = field(default_factory=list)
    ordinals: list[int] = field(default_factory=list)
    order_id: str | None = None
    report_ids: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    avoid: list[str] = field(default_factory=list)
    keep_photo: bool = False
    query: str = ""
    name_query: str = ""
    consumed: list[str] = field(default_factory=list)

    @property
    def personal(self) -> bool:
        return bool(self.concerns or self.skin_type)


def _phrase(text: str, phrase: str) -> re.Match[str] | None:
    return _phrase_pattern(phrase).search(text)


@cache
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Compiled once: the vocabulary has more phrases than `re`'s own cache holds, so each message
    compiled most of them again."""
    return re.compile(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])")


def _find_vocab(text: str, vocab: dict[str, tuple[str, ...]]) -> tuple[list[str], list[str]]:
    found: list[str] = []
    consumed: list[str] = []
    for key, phrases in vocab.items():
        for phrase in sorted(phrases, key=len, reverse=True):
            if _phrase(text, phrase):
                if key not in found:
                    found.append(key)
                consumed.append(phrase)
                break
    return found, consumed


def classify(text: str, has_attachment: bool) -> Intent:
    lowered = text.lower()
    for rule in book().intents:
        if rule.needs_attachment_or:
            if has_attachment or any(p.search(lowered) for p in rule.needs_attachment_or):
                return rule.name
            continue
        if any(p.search(lowered) for p in rule.patterns):
            return rule.name
    return Intent.UNKNOWN


def read(message: str) -> Reading:
    uploads = _ATTACHED.findall(message)
    text = _ATTACHED.sub(" ", message).strip()
    lowered = " ".join(text.lower().replace("’", "'").split())
    reading = Reading(text=text, uploads=uploads)
    reading.intent = classify(lowered, bool(uploads))
    words = book()

    reading.concerns, consumed = _find_vocab(lowered, words.concerns)
    types, consumed_types = _find_vocab(lowered, words.skin_types)
    reading.skin_type = types[0] if types else None
    categories, consumed_categories = _find_vocab(lowered, words.categories)
    reading.category = categories[0] if len(categories) == 1 else None
    reading.consumed = consumed + consumed_types + (consumed_categories if reading.category else [])

    budget = _BUDGET.search(lowered)
    if budget:
        reading.budget = float(budget.group(1) or budget.group(2))
        reading.consumed.append(budget.group(0))

    reading.product_ids = re.findall(r"\bprd_\w+", lowered)
    reading.variant_ids = re.findall(r"\bvar_\w+", lowered)  # a card's action on one size or shade
    order = re.search(r"\bord_[a-z0-9]+\b", lowered)
    reading.order_id = order.group(0) if order else None
    reading.report_ids = re.findall(r"\brep_[a-z0-9]+\b", lowered)
    for word, index in _ORDINALS.items():
        if re.search(rf"\b{word}\b", lowered):
            reading.ordinals.append(index)
    for number in re.findall(r"(?:#|number |no\.? ?)(\d)\b", lowered):
        reading.ordinals.append(int(number) - 1)
    reading.quantity = _quantity(lowered)
    reading.keep_photo = "keep the photo]" in message or bool(
        re.search(r"\bkeep (my|the|this) (photo|picture|selfie)\b", lowered)
    )
    reading.avoid = [m.strip() for m in _AVOID.findall(lowered) if m.strip() not in ("pain", "problem")][:5]
    # What to avoid is a filter, never a search word: "allergic to lanolin" must not look for lanolin.
    wanted = _AVOID.sub(" ", lowered)
    reading.query = _query(wanted, reading.consumed, words.filler)
    # Product names contain category and concern words ("Toy Serum"): a lookup by name keeps them.
    reading.name_query = _query(wanted, [], words.filler | _ACTION_WORDS)
    return reading


@lru_cache(maxsize=4096)
def read_earlier(message: str) -> Reading:
    """`read` of a message already answered, kept: each reply reads every earlier message of its chat again,
    so without it a reply's cost grew with the chat's length. The Reading is shared: read it, never change it."""
    return read(message)


def _quantity(text: str) -> int:
    match = re.search(
        r"\b(\d{1,2})\s*(?:x\b|×|of (?:the|them|it|these|those|each|that|this)\b|units?|pieces?|bottles?|tubes?|jars?|packs?)",
        text,
    )
    if match is None:
        match = re.search(r"(?:\bx\s*|×\s*|quantity\s*(?:of\s*)?)(\d{1,2})\b", text)
    if match:
        return max(1, int(match.group(1)))
    for word, value in _NUMBERS.items():
        if re.search(rf"\b{word}\b(?! of you)", text) and re.search(
            rf"\b{word}\b\s+(?:of|bottles?|tubes?|jars?)", text
        ):
            return value
    return 1


def _query(text: str, consumed: list[str], filler: frozenset[str]) -> str:
    """The words worth searching for: without filler, and without what became a filter."""
    for phrase in sorted(consumed, key=len, reverse=True):
        text = text.replace(phrase, " ")
    text = re.sub(r"\b(?:prd|ord|rep)_\w+", " ", text)
    kept = [w for w in _WORD.findall(text) if w not in filler and w not in _ORDINALS and not w.isdigit()]
    return " ".join(kept)


def image_query(text: str) -> str:
    lowered = text.lower()
    match = re.search(
        r"\b(?:images?|pictures?|pics?|photos?|inspiration)\s+(?:of|for|showing)\s+(.+)", lowered
    )
    subject = match.group(1) if match else lowered
    subject = re.sub(
        r"\b(show me|can you|please|find|some|what|does|do|look like|looks? like)\b", " ", subject
    )
    return " ".join(_WORD.findall(subject))[:200] or lowered[:200]
