"""The closed vocabularies shared by the catalog, the tools and the knowledge base, and the words shoppers use
for their values (`synonyms.json`, checked at start-up).

Kept in one leaf module (stdlib only) so every layer can import it without breaking the
dependency rule, and so a tool's JSON schema lists the allowed values.
"""

import difflib
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal, get_args

Category = Literal[
    "cleanser",
    "toner",
    "serum",
    "moisturiser",
    "sunscreen",
    "exfoliant",
    "mask",
    "eye_care",
    "spot_treatment",
]
SkinType = Literal["normal", "dry", "oily", "combination", "sensitive"]
Concern = Literal[
    "acne",
    "blackheads",
    "large_pores",
    "oiliness",
    "dryness",
    "dehydration",
    "redness",
    "sensitivity",
    "dark_spots",
    "uneven_tone",
    "dullness",
    "fine_lines",
    "uneven_texture",
    "dark_circles",
    "puffiness",
    "sun_protection",
]

CATEGORIES: tuple[str, ...] = get_args(Category)
SKIN_TYPES: tuple[str, ...] = get_args(SkinType)
CONCERNS: tuple[str, ...] = get_args(Concern)

# Product claim tags a catalog entry may carry.
Tag = Literal["fragrance_free", "vegan", "cruelty_free", "alcohol_free", "non_comedogenic", "reef_safe"]
TAGS: tuple[str, ...] = get_args(Tag)

# -- the words shoppers use for these values (data in synonyms.json) ----------------------------------

Kind = Literal["concern", "skin_type", "category", "tag"]
ALLOWED: dict[Kind, tuple[str, ...]] = {
    "concern": CONCERNS,
    "skin_type": SKIN_TYPES,
    "category": CATEGORIES,
    "tag": TAGS,
}
KIND_NAMES: dict[Kind, str] = {
    "concern": "concern",
    "skin_type": "skin type",
    "category": "product category",
    "tag": "product claim",
}
_OWN_WORD = "the vocabulary's own word"
# Words that say nothing about which value is meant, so sharing one is no hint.
_EMPTY_TEXT = "a an and my of the to too very skin face facial under post anti"
_EMPTY_WORDS = frozenset(_EMPTY_TEXT.split())


class SynonymDataError(ValueError):
    """synonyms.json breaks its own rules; the message names the entry."""


class UnknownWord(ValueError):
    """A word Shine cannot read as a value of a vocabulary; the message offers the nearest meanings."""

    def __init__(self, word: str, kind: Kind, suggestions: list[str]) -> None:
        self.word, self.kind, self.suggestions = word, kind, suggestions
        what = KIND_NAMES[kind]
        hint = (
            f"did you mean {' or '.join(suggestions)}?"
            if suggestions
            else f"known {what}s: {', '.join(ALLOWED[kind])}"
        )
        super().__init__(f"{word!r} is not a {what} Shine knows; {hint}")


@dataclass(frozen=True)
class Synonym:
    phrase: str  # normalised: lower case, hyphens as spaces
    means: str
    source: str
    note: str | None = None
    search: bool = True  # also read in free-text search


def normalise(text: str) -> str:
    """Lower case, curly apostrophes straight, hyphens, underscores and slashes as spaces, single spaces."""
    text = text.lower().replace("\u2019", "'")
    return " ".join(re.sub(r"[-_/]+", " ", text).split())


def _checked_text(entry: dict[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SynonymDataError(f"{where}: '{key}' must be a non-empty string")
    return value


def load_synonyms(data: dict[str, Any]) -> dict[Kind, dict[str, Synonym]]:
    """The phrase tables, checked: every value in its vocabulary, every entry sourced, no phrase claimed twice.

    Each vocabulary's own values are in its table too ('dark spots' means dark_spots)."""
    tables: dict[Kind, dict[str, Synonym]] = {}
    for kind, allowed in ALLOWED.items():
        table = {normalise(v): Synonym(normalise(v), v, _OWN_WORD) for v in allowed}
        entries = data.get(kind)
        if not isinstance(entries, list):
            raise SynonymDataError(f"'{kind}' must be a list of entries")
        for number, entry in enumerate(entries, 1):
            where = f"{kind} entry {number}"
            if not isinstance(entry, dict) or set(entry) - {"means", "words", "source", "note", "search"}:
                raise SynonymDataError(
                    f"{where}: an object with means, words, source and optional note, search"
                )
            means = entry.get("means")
            if means not in allowed:
                raise SynonymDataError(f"{where}: {means!r} is not a {KIND_NAMES[kind]}")
            source = _checked_text(entry, "source", where, required=True)
            note = _checked_text(entry, "note", where, required=False)
            search = entry.get("search", True)
            words = entry.get("words")
            if not isinstance(search, bool) or not isinstance(words, list) or not words:
                raise SynonymDataError(
                    f"{where}: 'words' must be a non-empty list and 'search' true or false"
                )
            for word in words:
                phrase = normalise(word) if isinstance(word, str) else ""
                if not phrase:
                    raise SynonymDataError(f"{where}: {word!r} is not a word")
                known = table.get(phrase)
                if known is not None and (known.means != means or known.source != _OWN_WORD):
                    raise SynonymDataError(f"{where}: {word!r} is listed already (meaning {known.means})")
                table[phrase] = Synonym(phrase, str(means), str(source), note, search)
        tables[kind] = table
    return tables


SYNONYMS: dict[Kind, dict[str, Synonym]] = load_synonyms(
    json.loads(files("shine_mcp").joinpath("synonyms.json").read_text("utf-8"))
)


def _variants(phrase: str, kind: Kind) -> list[str]:
    """The phrase, then its singular and plural ('dark spot', 'blackhead'), and for skin types without 'skin'."""
    out = [phrase]
    if kind == "skin_type" and phrase.endswith(" skin"):
        out.append(phrase.removesuffix(" skin"))
    for base in list(out):
        if base.endswith("es"):
            out.append(base[:-2])
        if base.endswith("s"):
            out.append(base[:-1])
        out.append(base + "s")
    return out


def lookup(word: str, kind: Kind) -> Synonym | None:
    """What a shopper's word means in one vocabulary, or None."""
    table = SYNONYMS[kind]
    for variant in _variants(normalise(word), kind):
        if variant in table:
            return table[variant]
    return None


def _stem(token: str) -> str:
    return token[:5] if len(token) > 5 else token


def suggest(word: str, kind: Kind, limit: int = 3) -> list[str]:
    """Values a word probably means: by meaning first (it shares a word with a known phrase, 'bags' ->
    puffiness), then by spelling against every known phrase, for typos ('wrinkels' -> fine_lines)."""
    table = SYNONYMS[kind]
    tokens = {_stem(t) for t in normalise(word).split() if t not in _EMPTY_WORDS and len(t) > 2}
    scored: dict[str, int] = {}
    for phrase, synonym in table.items():
        shared = len(tokens & {_stem(t) for t in phrase.split() if t not in _EMPTY_WORDS})
        if shared:
            scored[synonym.means] = max(scored.get(synonym.means, 0), shared)
    found = sorted(scored, key=lambda means: -scored[means])
    for phrase in difflib.get_close_matches(normalise(word), list(table), n=limit * 3, cutoff=0.75):
        found.append(table[phrase].means)
    return list(dict.fromkeys(found))[:limit]


def understand(words: list[str], kind: Kind) -> tuple[list[str], list[str]]:
    """Each word as its vocabulary value (no duplicates), and the notes the shopper should read.

    Raises UnknownWord, offering the nearest meanings, for the first word Shine cannot read."""
    values: list[str] = []
    notes: list[str] = []
    for word in words:
        found = lookup(word, kind)
        if found is None:
            raise UnknownWord(word.strip(), kind, suggest(word, kind))
        if found.means not in values:
            values.append(found.means)
        if found.note and found.note not in notes:
            notes.append(found.note)
    return values, notes


def search_phrases(kind: Kind) -> list[Synonym]:
    """The phrases free-text search reads for a vocabulary, longest first (so 'sun serum' beats 'serum')."""
    return sorted((s for s in SYNONYMS[kind].values() if s.search), key=lambda s: (-len(s.phrase), s.phrase))


# Words a shop uses for a category, as the catalog importers match them.
CATEGORY_ALIASES: dict[str, str] = {
    form: synonym.means for phrase, synonym in SYNONYMS["category"].items() for form in (phrase, phrase + "s")
}


def meaning_among(word: str, allowed: list[str]) -> list[str]:
    """For a word refused by a schema listing `allowed` (one whole vocabulary): the value it means or may
    mean ('hyperpigmentation' -> dark_spots, 'SPF' -> sunscreen); empty for any other list of choices."""
    for kind, values in ALLOWED.items():
        if set(values) == set(allowed):
            found = lookup(word, kind)
            return [found.means] if found else suggest(word, kind, limit=1)
    return []
