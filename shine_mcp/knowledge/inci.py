"""Parse a free-text INCI list ("Aqua/Water, Niacinamide 10%, Parfum*, May contain: CI 77891") into
canonical ingredients, in label order, without duplicates."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PREFIX = re.compile(r"^\s*(?:full\s+)?(?:ingredients?|inci|composition)\s*(?:list)?\s*[:\-–]\s*", re.I)
_MAY_CONTAIN = re.compile(r"(?:\bmay\s+contain\b|\[\s*\+/-\s*\]|\(\s*\+/-\s*\)|\+/-)\s*:?", re.I)
_PCT = re.compile(r"(\d+(?:[.,]\d+)?)\s*%")
_MARKERS = re.compile(r"[*†‡°¹²³⁴⁵]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedIngredient:
    raw: str
    name: str
    known: bool
    family: str | None
    concentration_pct: float | None
    may_contain: bool
    position: int


def _split_top_level(text: str) -> list[str]:
    """Split on commas, semicolons, bullets and newlines that are not inside parentheses or brackets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        if depth == 0 and char in ",;\n•·|":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _clean(token: str) -> tuple[str, float | None]:
    token = _MARKERS.sub("", token).strip().strip(".").strip()
    token = re.sub(r"^(?:and|&)\s+", "", token, flags=re.I)
    pct_match = _PCT.search(token)
    pct = float(pct_match.group(1).replace(",", ".")) if pct_match else None
    token = _PCT.sub("", token).strip(" -–:")
    return _SPACES.sub(" ", token).strip(), pct


def _display(name: str) -> str:
    return name.title() if name.islower() or name.isupper() and len(name) > 4 else name


def parse_inci(text: str) -> list[ParsedIngredient]:
    """Names are canonicalised through the bundled knowledge base; unknown ones are kept, cleaned."""
    from shine_mcp.knowledge.base import load_knowledge

    kb = load_knowledge()
    text = _PREFIX.sub("", text or "")
    may_contain_at = _MAY_CONTAIN.search(text)
    sections = [(text, False)]
    if may_contain_at:
        sections = [(text[: may_contain_at.start()], False), (text[may_contain_at.end() :], True)]
    # "Water, Glycerin and Niacinamide": a final "and" separates the last two.
    result: list[ParsedIngredient] = []
    seen: set[str] = set()
    for section, may_contain in sections:
        tokens = _split_top_level(section)
        if tokens:
            last = re.split(r"\s+and\s+", tokens[-1], flags=re.I)
            if len(last) == 2 and all(last):
                tokens = [*tokens[:-1], *last]
        for raw in tokens:
            name, pct = _clean(raw)
            if len(name) < 2:
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
