"""The ingredient knowledge base: INCI names, synonyms and families, each with a source, loaded once."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

from pydantic import BaseModel, Field, model_validator

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


class Source(BaseModel):
    id: str
    title: str
    publisher: str
    year: int
    url: str


class Ingredient(BaseModel):
    inci: str
    synonyms: list[str] = Field(default_factory=list)
    family: str | None = None
    functions: list[str] = Field(default_factory=list)
    source_id: str = Field(description="Where the identity/family claim comes from.")


class Family(BaseModel):
    id: str
    description: str
    also_excludes: list[str] = Field(default_factory=list, description="Families a shopper means too.")
    words: list[str] = Field(description="What shoppers call it: 'fragrance', 'perfume', 'retinoids'.")
    source_id: str


class KnowledgeData(BaseModel):
    sources: list[Source]
    families: list[Family]
    ingredients: list[Ingredient]

    @model_validator(mode="after")
    def _every_claim_is_sourced(self) -> KnowledgeData:
        known = {s.id for s in self.sources}
        family_ids = {f.id for f in self.families}
        sourced: list[Family | Ingredient] = [*self.families, *self.ingredients]
        for item in sourced:
            if item.source_id not in known:
                raise ValueError(f"{item} cites unknown source {item.source_id!r}")
        for ingredient in self.ingredients:
            if ingredient.family and ingredient.family not in family_ids:
                raise ValueError(f"{ingredient.inci}: unknown family {ingredient.family!r}")
        return self


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


class KnowledgeBase:
    def __init__(self, data: KnowledgeData) -> None:
        self.data = data
        self.sources = {s.id: s for s in data.sources}
        self.families = {f.id: f for f in data.families}
        self._by_key: dict[str, Ingredient] = {}
        for ingredient in data.ingredients:
            for name in [ingredient.inci, *ingredient.synonyms]:
                existing = self._by_key.setdefault(_key(name), ingredient)
                if existing is not ingredient:
                    raise ValueError(f"{name!r} names both {existing.inci} and {ingredient.inci}")
        self._family_words = {_key(w): f for f in data.families for w in [f.id, *f.words]}

    def lookup(self, name: str) -> Ingredient | None:
        """Find an ingredient by INCI name or synonym, including 'Water (Aqua)' and 'Aqua/Water/Eau'."""
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
                keys |= {f"family:{f}" for f in [family.id, *family.also_excludes]}
                continue
            ingredient = self.lookup(word)
            if ingredient is not None:
                keys.add(ingredient.inci)
                if ingredient.family:
                    keys.add(f"family:{ingredient.family}")
        return keys


@cache
def load_knowledge() -> KnowledgeBase:
    """Load and validate the bundled data once per process; a bad data file fails at start-up."""
    folder = resources.files("shine_mcp.knowledge").joinpath("data")
    raw = {
        name: json.loads(folder.joinpath(f"{name}.json").read_text("utf-8"))
        for name in ("sources", "ingredients")
    }
    return KnowledgeBase(
        KnowledgeData(
            sources=raw["sources"],
            families=raw["ingredients"]["families"],
            ingredients=raw["ingredients"]["ingredients"],
        )
    )
