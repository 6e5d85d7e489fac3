"""Parse a free-text INCI list ("Aqua/Water, Niacinamide 10%, Parfum*, May contain: CI 77891") into
canonical ingredients, in label order, without duplicates.

Labels come from packaging, shop pages and scans: the parser tolerates prefixes ("Ingredients:",
"Inactive ingredients:"), any separator a label uses (commas, semicolons, newlines, bullets, spaced
dashes, "(and)", full stops between sentences), organic-marker footnotes, concentrations written
either side of the name, unicode dashes and non-breaking spaces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

_PREFIX = re.compile(r"^\s*(?:full\s+)?(?:ingredients?|inci|composition)\s*(?:list)?\s*[:\-–]\s*", re.I)
_MAY_CONTAIN = re.compile(
    r"(?:\bmay\s+contain\b|\bpeut\s+contenir\b|[\[(]\s*(?:\+/-|±)\s*[\])]|\+/-|±)\s*(?:[\[(]\s*(?:\+/-|±)\s*[\])])?\s*:?",
    re.I,
)
_PCT = re.compile(r"(\d+(?:[.,]\d+)?)\s*%")
_MARKERS = re.compile(r"[*†‡°]+")
_SPACES = re.compile(r"\s+")
# A full stop that ends a sentence ("...Butter. *Organic"), not the one in "Alcohol Denat.,".
_SENTENCE_END = re.compile(r"\.(?=\s)")
_SPACED_DASH = re.compile(r"\s[–—]\s")
_AND_SEPARATOR = re.compile(r"\s*\(\s*and\s*\)\s*", re.I)
_NANO = re.compile(r"\s*[\[(]\s*nano\s*[\])]", re.I)
_LABEL = re.compile(r"^(?:(?:active|inactive|other|non[- ]?active)\s+)?(?:ingredients?|inci|contains)$", re.I)
# "*Organic", "* = certified organic ingredients", "(*) from organic farming", "99% natural origin".
_FOOTNOTE = re.compile(
    r"^\s*(?:\(\s*[*†‡°]+\s*\)|[*†‡°]+)\s*[=:\-–]?\s*.*\b(?:organic|natural|certified|farming|origin|ecocert|"
    r"cosmos|biologique|bio|fair\s*trade|wild\s*crafted)\b"
    r"|^\s*\d+(?:[.,]\d+)?\s*%\s+(?:of\b|[^,;]*\b(?:natural|organic)\s+(?:origin|ingredients?|farming)\b)",
    re.I,
)
# Unicode hyphens inside names ("Alpha‐Arbutin", "PEG‑100") are plain hyphens.
_HYPHENS = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2212": "-", "\u00ad": ""})


@dataclass(frozen=True)
class ParsedIngredient:
    raw: str
    name: str
    known: bool
    family: str | None
    concentration_pct: float | None
    may_contain: bool
    position: int


def _normalise(text: str) -> str:
    # Superscript footnote marks would become digits under NFKC ("Linalool¹" → "Linalool1").
    text = re.sub(r"[¹²³⁴⁵⁶⁷⁸⁹⁰⁺]+", "*", text)
    text = unicodedata.normalize("NFKC", text).translate(_HYPHENS)
    text = _AND_SEPARATOR.sub(",", text)
    text = _SPACED_DASH.sub(",", text)
    # Unspaced en/em dashes sit inside names ("Alpha–Isomethyl Ionone").
    text = text.replace("–", "-").replace("—", "-")
    return _SENTENCE_END.sub("\n", text)


def _split_top_level(text: str) -> list[str]:
    """Split on commas, semicolons, bullets and newlines that are not inside parentheses or brackets.

    A comma between digits is part of a name or a decimal ("1,2-Hexanediol", "0,5 %").
    """
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        between_digits = (
            char == ","
            and 0 < index < len(text) - 1
            and text[index - 1].isdigit()
            and text[index + 1].isdigit()
        )
        if depth == 0 and char in ",;\n•·|▪●" and not between_digits:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _strip_label(token: str) -> str:
    """'Inactive ingredients: Water' → 'Water'; '*From organic farming: Aloe' → 'Aloe'."""
    if ":" not in token:
        return token
    label, _, rest = token.rpartition(":")
    cleaned = _MARKERS.sub("", label).strip()
    if _LABEL.match(cleaned) or _FOOTNOTE.match(label) or not rest.strip():
        return rest if rest.strip() else ""
    return token


def _clean(token: str) -> tuple[str, float | None]:
    token = _NANO.sub("", token)
    token = _MARKERS.sub("", token).strip().strip(".").strip()
    token = re.sub(r"^(?:and|&)\s+", "", token, flags=re.I)
    pct_match = _PCT.search(token)
    pct = float(pct_match.group(1).replace(",", ".")) if pct_match else None
    token = _PCT.sub("", token)
    token = re.sub(r"\(\s*\)", "", token).strip(" -:.")
    return _SPACES.sub(" ", token).strip(), pct


def _display(name: str) -> str:
    return name.title() if name.islower() or name.isupper() and len(name) > 4 else name


def _tokens(section: str) -> list[str]:
    tokens = [_strip_label(t) for t in _split_top_level(section)]
    tokens = [t for t in tokens if t.strip() and not _FOOTNOTE.match(t)]
    # "Water, Glycerin and Niacinamide": a final "and" separates the last two.
    if tokens:
        last = re.split(r"\s+and\s+", tokens[-1], flags=re.I)
        if len(last) == 2 and all(part.strip() for part in last):
            tokens = [*tokens[:-1], *last]
    return tokens


def parse_inci(text: str) -> list[ParsedIngredient]:
    """Names are canonicalised through the bundled knowledge base; unknown ones are kept, cleaned."""
    from shine_mcp.knowledge.base import load_knowledge

    kb = load_knowledge()
    text = _PREFIX.sub("", _normalise(text or "").lstrip())
    may_contain_at = _MAY_CONTAIN.search(text)
    sections = [(text, False)]
    if may_contain_at:
        sections = [(text[: may_contain_at.start()], False), (text[may_contain_at.end() :], True)]
    result: list[ParsedIngredient] = []
    seen: set[str] = set()
    for section, may_contain in sections:
        for raw in _tokens(section):
            name, pct = _clean(raw)
            if len(name) < 2 or not re.search(r"[A-Za-z]", name):
                # A lone "10%" after a spaced dash belongs to the ingredient before it.
                if pct is not None and result and result[-1].concentration_pct is None:
                    result[-1] = replace(result[-1], concentration_pct=pct)
                continue
            entry = kb.lookup(name)
            final = entry.inci if entry else _display(name)
            key = final.lower()
            if key in seen:
                continue
            seen.add(key)
            result.append(
                ParsedIngredient(
                    raw=raw.strip(),
                    name=final,
                    known=entry is not None,
                    family=entry.family if entry else kb.guess_family(name),
                    concentration_pct=pct,
                    may_contain=may_contain,
                    position=len(result) + 1,
                )
            )
    return result
