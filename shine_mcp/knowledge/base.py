"""The ingredient knowledge base: INCI names, synonyms and families, what they do for which concern,
their cautions and which actives clash, every claim with a source; loaded and validated once.

The data files are in `data/`, their shapes in `schema.py`, the free-text INCI parser in `inci.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shine_mcp.knowledge.schema import (
    EVIDENCE_RANK,
    Caution,
    CautionKind,
    ConcernClaim,
    Evidence,
    Family,
    Ingredient,
    InteractionRule,
    KnowledgeData,
    Source,
)
from shine_mcp.vocabulary import CONCERNS

__all__ = [
    "Caution",
    "CautionKind",
    "Clash",
    "ConcernClaim",
    "Evidence",
    "Family",
    "Ingredient",
    "InteractionRule",
    "KnowledgeBase",
    "KnowledgeData",
    "Source",
    "load_knowledge",
    "load_knowledge_from",
]

# Genera whose leaf, flower, peel, bark or wood oils are essential oils (fragrant, sensitising);
# seed, kernel and nut oils of other plants are carrier oils and are not.
_ESSENTIAL_OIL_GENERA = (
    "lavandula",
    "citrus",
    "eucalyptus",
    "mentha",
    "melaleuca",
    "rosmarinus",
    "pelargonium",
    "cymbopogon",
    "santalum",
    "cananga",
    "salvia",
    "origanum",
    "thymus",
    "juniperus",
    "cinnamomum",
    "pogostemon",
    "boswellia",
    "commiphora",
    "cupressus",
    "abies",
    "pinus",
    "anthemis",
    "chamomilla",
    "jasminum",
    "litsea",
    "ocimum",
    "vetiveria",
    "cedrus",
    "rosa damascena",
    "illicium",
    "eugenia caryophyllus",
)
_CARRIER = re.compile(r"\b(seed|kernel|nut)\s+oil\b", re.I)
_FAMILY_PREFIX = "family:"


class Clash(BaseModel):
    """One interaction rule triggered by one ingredient of each side."""

    model_config = ConfigDict(frozen=True)

    rule: InteractionRule
    a_ingredient: str
    b_ingredient: str


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


MEMO_LIMIT = 100_000  # distinct ingredient names remembered before the memo starts over


class KnowledgeBase:
    def __init__(self, data: KnowledgeData) -> None:
        self.data = data
        self.sources = {s.id: s for s in data.sources}
        self.families = {f.id: f for f in data.families}
        self.rules: list[InteractionRule] = list(data.interactions)
        self._by_key: dict[str, Ingredient] = {}
        for ingredient in data.ingredients:
            for name in [ingredient.inci, *ingredient.synonyms]:
                existing = self._by_key.setdefault(_key(name), ingredient)
                if existing is not ingredient:
                    raise ValueError(f"{name!r} names both {existing.inci} and {ingredient.inci}")
        self._family_words = {_key(w): f for f in data.families for w in [f.id, *f.words]}
        self._rules_by_key: dict[str, list[InteractionRule]] = {}
        for rule in self.rules:
            self._rules_by_key.setdefault(rule.a, []).append(rule)
            if rule.b != rule.a:
                self._rules_by_key.setdefault(rule.b, []).append(rule)
        # Ingredient lists repeat across 50 000 products: memoise the per-name answers.
        self._keys_memo: dict[str, tuple[str, frozenset[str]]] = {}
        self._lookup_memo: dict[str, Ingredient | None] = {}
        self._cautions_memo: dict[str, list[Caution]] = {}

    # -- identity -------------------------------------------------------------------------------

    def lookup(self, name: str) -> Ingredient | None:
        """Find an ingredient by INCI name or synonym, including 'Water (Aqua)' and 'Aqua/Water/Eau'."""
        if name in self._lookup_memo:
            return self._lookup_memo[name]
        if len(self._lookup_memo) > MEMO_LIMIT:  # pasted lists are arbitrary text: keep memory bounded
            self._lookup_memo.clear()
            self._cautions_memo.clear()
        found = self._lookup_memo[name] = self._find(name)
        return found

    def _find(self, name: str) -> Ingredient | None:
        key = _key(name)
        if key in self._by_key:
            return self._by_key[key]
        outside = re.sub(r"\(.*?\)", " ", name)
        inside = re.findall(r"\((.*?)\)", name)
        for candidate in [outside, *inside, *name.split("/"), *outside.split("/")]:
            found = self._by_key.get(_key(candidate))
            if found:
                return found
        return None

    def canonical(self, name: str) -> str | None:
        found = self.lookup(name)
        return found.inci if found else None

    def guess_family(self, name: str) -> str | None:
        """Families for names not in the base: essential oils by genus, fragrance by the word."""
        lower = name.lower()
        if re.search(r"\b(parfum|fragrance|aroma)\b", lower):
            return "fragrance"
        if " oil" in lower and not _CARRIER.search(lower) and lower.startswith(_ESSENTIAL_OIL_GENERA):
            return "essential_oil"
        return None

    def family_of(self, name: str) -> str | None:
        """The family of a known ingredient, or the guessed one of an unknown fragrance or oil."""
        found = self.lookup(name)
        if found is not None:
            return found.family
        return self.guess_family(name)

    def family_members(self, family: str) -> set[str]:
        return {i.inci for i in self.data.ingredients if i.family == family}

    def expand_exclusions(self, words: list[str]) -> set[str]:
        """What a shopper's 'no X' means: `family:<id>` keys for families, canonical names otherwise.

        Unknown words give nothing: the caller matches them as text instead.
        """
        keys: set[str] = set()
        for word in words:
            family = self._family_words.get(_key(word))
            if family is not None:
                keys |= {f"{_FAMILY_PREFIX}{f}" for f in [family.id, *family.also_excludes]}
                continue
            ingredient = self.lookup(word)
            if ingredient is not None:
                keys.add(ingredient.inci)
                if ingredient.family:
                    keys.add(f"{_FAMILY_PREFIX}{ingredient.family}")
        return keys

    def exclusion_terms(self, words: list[str]) -> tuple[set[str], set[str]]:
        """Split what to avoid into known ingredient keys (lower-cased canonical names and `family:<id>`)
        and free-text words (lower-cased).

        'fragrance' becomes every fragrance ingredient the base knows (parfum, essential oils, labelled
        allergens); a word it doesn't know, like 'shea', is for matching inside ingredient names. A known
        ingredient is also matched inside names, so 'lanolin' catches 'Lanolin Alcohol (Eucerit)' and
        'Hydrogenated Lanolin', derivatives the base may not list: for an allergy, the safe side.
        """
        keys: set[str] = set()
        texts: set[str] = set()
        for word in words:
            expanded = self.expand_exclusions([word])
            if expanded:
                keys |= {key.lower() for key in expanded}
                ingredient = None if _key(word) in self._family_words else self.lookup(word)
                if ingredient is not None:
                    texts |= {" ".join(word.lower().split()), ingredient.inci.lower()}
            elif word.strip():
                texts.add(word.strip().lower())
        return keys, texts

    def source(self, source_id: str) -> Source:
        try:
            return self.sources[source_id]
        except KeyError:
            raise KeyError(f"no source {source_id!r} in the knowledge base") from None

    # -- what it does and what to watch ---------------------------------------------------------

    def concern_claims(self, inci: str) -> list[ConcernClaim]:
        """The ingredient's own claims, then its family's for concerns it does not claim itself.

        An ingredient's own claim overrides its family's for the same concern (retinyl palmitate's
        'limited' fine-lines evidence is not lifted by the retinoid family's).
        """
        found = self.lookup(inci)
        if found is None:
            return []
        claims = list(found.concerns)
        if found.family:
            own = {c.concern for c in claims}
            claims += [c for c in self.families[found.family].concerns if c.concern not in own]
        return claims

    def cautions(self, inci: str) -> list[Caution]:
        """The ingredient's own cautions plus its family's (guessed for unknown fragrances and oils)."""
        memo = self._cautions_memo.get(inci)
        if memo is None:
            found = self.lookup(inci)
            memo = list(found.cautions) if found else []
            family = self.family_of(inci)
            if family:
                memo += [c for c in self.families[family].cautions if c not in memo]
            self._cautions_memo[inci] = memo
        return list(memo)

    def caution_kinds(self, inci: str) -> set[CautionKind]:
        return {c.kind for c in self.cautions(inci)}

    def ingredients_for(self, concern: str) -> list[tuple[str, ConcernClaim]]:
        """Every ingredient with a claim on `concern` (its strongest), strongest evidence first."""
        if concern not in CONCERNS:
            raise ValueError(f"unknown concern {concern!r}; known: {', '.join(CONCERNS)}")
        found: list[tuple[str, ConcernClaim]] = []
        for ingredient in self.data.ingredients:
            claims = [c for c in self.concern_claims(ingredient.inci) if c.concern == concern]
            if claims:
                found.append((ingredient.inci, min(claims, key=lambda c: EVIDENCE_RANK[c.evidence])))
        return sorted(found, key=lambda item: (EVIDENCE_RANK[item[1].evidence], item[0]))

    # -- interactions ---------------------------------------------------------------------------

    def _name_and_keys(self, name: str) -> tuple[str, frozenset[str]]:
        memo = self._keys_memo.get(name)
        if memo is None:
            found = self.lookup(name)
            canonical = found.inci if found else " ".join(name.split())
            family = found.family if found else self.guess_family(name)
            keys = {canonical} | ({f"{_FAMILY_PREFIX}{family}"} if family else set())
            memo = self._keys_memo[name] = (canonical, frozenset(keys))
        return memo

    def active_keys(self, inci: str) -> set[str]:
        """Its canonical name and `family:<id>`: the keys interaction rules and exclusions use."""
        return set(self._name_and_keys(inci)[1])

    def clashes(self, a: Iterable[str], b: Iterable[str]) -> list[Clash]:
        """Interaction rules triggered by an ingredient of `a` with one of `b`, in either order.

        Pass the same list twice to find clashes inside one product; an ingredient never clashes
        with itself. Each (rule, pair of ingredients) is reported once.
        """
        left = [self._name_and_keys(name) for name in a]
        right = [self._name_and_keys(name) for name in b]
        right_rules = [self._rules_for(keys) for _, keys in right]
        found: list[Clash] = []
        seen: set[tuple[str, frozenset[str]]] = set()
        for a_name, a_keys in left:
            a_rules = self._rules_for(a_keys)
            if not a_rules:
                continue
            for (b_name, b_keys), b_rules in zip(right, right_rules, strict=True):
                if a_name == b_name or not b_rules:
                    continue
                for rule in a_rules & b_rules:
                    if a_name in rule.exempt or b_name in rule.exempt:
                        continue
                    hit = (rule.a in a_keys and rule.b in b_keys) or (rule.b in a_keys and rule.a in b_keys)
                    pair = (rule.id, frozenset((a_name, b_name)))
                    if hit and pair not in seen:
                        seen.add(pair)
                        found.append(Clash(rule=rule, a_ingredient=a_name, b_ingredient=b_name))
        return found

    def interacting(self, names: Iterable[str]) -> list[str]:
        """The names some interaction rule mentions: only these can make two products clash."""
        return [name for name in names if self._rules_for(self._name_and_keys(name)[1])]

    def _rules_for(self, keys: frozenset[str]) -> set[InteractionRule]:
        return {rule for key in keys for rule in self._rules_by_key.get(key, ())}


# -- loading -------------------------------------------------------------------------------------


def _read(folder: Traversable, name: str) -> Any:
    return json.loads(folder.joinpath(name).read_text("utf-8"))


def _validated(model: type[BaseModel], entry: dict[str, Any], label: str) -> dict[str, Any]:
    """Validate one entry alone so a mistake names the entry, not a list index."""
    try:
        model.model_validate(entry)
    except ValidationError as error:
        raise ValueError(f"{label}: {error}") from error
    return entry


def _merge_claims(
    files: list[tuple[str, list[dict[str, Any]]]],
    families: dict[str, dict[str, Any]],
    ingredients: dict[str, dict[str, Any]],
) -> None:
    """Attach the `concerns` and `cautions` of each claims file to the entry its `target` names."""
    claimed: dict[str, str] = {}
    for file_name, entries in files:
        for entry in entries:
            target = entry.get("target", "")
            label = f"{file_name}: {target!r}"
            if target in claimed:
                raise ValueError(f"{label} already has claims in {claimed[target]}")
            claimed[target] = file_name
            if set(entry) - {"target", "concerns", "cautions"}:
                raise ValueError(
                    f"{label}: unexpected keys {sorted(set(entry) - {'target', 'concerns', 'cautions'})}"
                )
            if target.startswith(_FAMILY_PREFIX):
                item = families.get(target[len(_FAMILY_PREFIX) :])
            else:
                item = ingredients.get(target)
            if item is None:
                raise ValueError(
                    f"{label} is neither 'family:<id>' of a known family nor a canonical INCI name"
                )
            for field, model in (("concerns", ConcernClaim), ("cautions", Caution)):
                for claim in entry.get(field, []):
                    _validated(model, claim, f"{label} {field}")
                item[field] = [*item.get(field, []), *entry.get(field, [])]


def load_knowledge_from(folder: Traversable) -> KnowledgeBase:
    """Load and validate a data folder laid out like the bundled `data/`; errors name the entry."""
    raw = _read(folder, "ingredients.json")
    families = {f["id"]: _validated(Family, f, f"family {f.get('id')!r}") for f in raw["families"]}
    ingredients: dict[str, dict[str, Any]] = {}
    for entry in raw["ingredients"]:
        label = f"ingredient {entry.get('inci')!r}"
        if entry.get("inci") in ingredients:
            raise ValueError(f"{label} is listed twice")
        ingredients[entry["inci"]] = _validated(Ingredient, entry, label)
    claims_folder = folder.joinpath("claims")
    claim_files = sorted(
        (f.name, _read(claims_folder, f.name)) for f in claims_folder.iterdir() if f.name.endswith(".json")
    )
    _merge_claims(claim_files, families, ingredients)
    sources = _read(folder, "sources.json")
    interactions = _read(folder, "interactions.json")
    for source in sources:
        _validated(Source, source, f"source {source.get('id')!r}")
    for rule in interactions:
        _validated(InteractionRule, rule, f"interaction {rule.get('id')!r}")
    return KnowledgeBase(
        KnowledgeData(
            sources=sources,
            families=list(families.values()),
            ingredients=list(ingredients.values()),
            interactions=interactions,
        )
    )


@cache
def load_knowledge() -> KnowledgeBase:
    """Load and validate the bundled data once per process; a bad data file fails at start-up."""
    return load_knowledge_from(resources.files("shine_mcp.knowledge").joinpath("data"))
