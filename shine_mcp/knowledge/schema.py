"""The shapes of the knowledge data (sources, families, ingredients, claims, interaction rules).

Only models and their cross-reference checks live here; loading and queries are in `base.py`.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shine_mcp.vocabulary import Concern

Evidence = Literal["strong", "moderate", "limited"]
CautionKind = Literal["pregnancy", "sensitive_skin", "photosensitivity", "allergen", "irritation"]
Severity = Literal["avoid_same_slot", "caution"]
Resolution = Literal["alternate_nights", "split_am_pm", "separate_products"]

StudyType = Literal["guideline", "meta_analysis", "rct", "open_label", "regulation", "review", "in_vitro"]

# Strongest first: sorting and "best claim" choices use this rank.
EVIDENCE_RANK: dict[str, int] = {"strong": 0, "moderate": 1, "limited": 2}

# Study types whose basis counts studies: `n` is required for these.
COUNTED_STUDIES: frozenset[str] = frozenset({"meta_analysis", "rct", "open_label"})


def highest_grade(study_type: StudyType, n: int | None) -> Evidence:
    """The strongest grade a basis can carry, per the rubric in docs/evidence.md.

    strong: a clinical guideline's recommendation, a meta-analysis of at least two trials, or at least two
    randomised controlled trials; moderate: one RCT, a regulator's approval for that use, or a review of
    human use; limited: open-label or uncontrolled studies and laboratory work.
    """
    if study_type == "guideline":
        return "strong"
    if study_type in ("meta_analysis", "rct"):
        return "strong" if n is not None and n >= 2 else "moderate"
    if study_type in ("regulation", "review"):
        return "moderate"
    return "limited"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_SEARCH_PAGES = frozenset({"search", "searchresults", "results"})
_SEARCH_PARAMETERS = frozenset({"search", "searchterm", "query", "q", "term", "keyword", "keywords"})


def specific_url_problem(url: str) -> str | None:
    """Why `url` does not point at one document (a search page or a bare home page), or None."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        return "must be https"
    if not parts.path.strip("/"):
        return "is a bare home page; link the document itself"
    pages = {segment.split(".")[0].lower() for segment in parts.path.split("/") if segment}
    parameters = {key.lower() for key in parse_qs(parts.query, keep_blank_values=True)}
    if pages & _SEARCH_PAGES or parameters & _SEARCH_PARAMETERS:
        return "is a search page; link the document itself"
    return None


class Source(_Frozen):
    id: str
    title: str
    publisher: str
    year: int
    url: str = Field(description="The document itself: a DOI, PubMed/PMC page, regulation or label page.")
    checked: str = Field(
        min_length=20,
        description="What was checked against the published record: identifier (PMID/DOI/CELEX), year, "
        "journal, and what the abstract or text supports.",
    )

    @field_validator("url")
    @classmethod
    def _specific(cls, value: str) -> str:
        problem = specific_url_problem(value)
        if problem is not None:
            raise ValueError(f"source URL {value!r} {problem}")
        return value


class Basis(_Frozen):
    """What a claim's grade rests on: the kind of evidence the cited source gives, and how much."""

    study_type: StudyType
    n: int | None = Field(
        default=None,
        ge=1,
        description="How many studies of that type the source reports for this claim (trials pooled, for a "
        "meta-analysis); null for guidelines, regulations, reviews and laboratory work.",
    )

    @model_validator(mode="after")
    def _counted(self) -> Basis:
        if self.study_type in COUNTED_STUDIES and self.n is None:
            raise ValueError(f"a {self.study_type} basis needs n, the number of studies")
        return self


class ConcernClaim(_Frozen):
    """'This ingredient helps with that concern', how well that is established, and who says so."""

    concern: Concern
    evidence: Evidence
    basis: Basis
    source_id: str
    note: str = Field(description="A short sentence a shopper can read, e.g. 'reduces redness at 4–5 %'.")

    @model_validator(mode="after")
    def _grade_fits_basis(self) -> ConcernClaim:
        ceiling = highest_grade(self.basis.study_type, self.basis.n)
        if EVIDENCE_RANK[self.evidence] < EVIDENCE_RANK[ceiling]:
            count = f", n={self.basis.n}" if self.basis.n is not None else ""
            raise ValueError(
                f"{self.concern}: graded {self.evidence!r} but a {self.basis.study_type}{count} basis supports "
                f"at most {ceiling!r} (see docs/evidence.md)"
            )
        return self


class Caution(_Frozen):
    kind: CautionKind
    advice: str = Field(description="What to do about it, addressed to the shopper.")
    source_id: str


class InteractionRule(_Frozen):
    """Two actives that should not share a routine slot, and what to do instead.

    `a` and `b` are `family:<id>` keys or canonical INCI names; the rule is symmetric. `exempt` names
    members of a family the rule's reason does not hold for (adapalene is stable next to benzoyl peroxide,
    unlike tretinoin).
    """

    id: str
    a: str
    b: str
    exempt: tuple[str, ...] = ()
    severity: Severity
    resolution: Resolution
    advice: str
    why: str
    source_id: str


class Ingredient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inci: str
    synonyms: list[str] = Field(default_factory=list)
    family: str | None = None
    functions: list[str] = Field(default_factory=list)
    source_id: str = Field(description="Where the identity/family claim comes from.")
    concerns: list[ConcernClaim] = Field(default_factory=list)
    cautions: list[Caution] = Field(default_factory=list)


class Family(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    description: str
    also_excludes: list[str] = Field(default_factory=list, description="Families a shopper means too.")
    words: list[str] = Field(description="What shoppers call it: 'fragrance', 'perfume', 'retinoids'.")
    source_id: str
    concerns: list[ConcernClaim] = Field(
        default_factory=list, description="Claims true of every member of the family."
    )
    cautions: list[Caution] = Field(default_factory=list)


def _claim_sources(item: Ingredient | Family) -> list[str]:
    return [item.source_id, *(c.source_id for c in item.concerns), *(c.source_id for c in item.cautions)]


class KnowledgeData(BaseModel):
    sources: list[Source]
    families: list[Family]
    ingredients: list[Ingredient]
    interactions: list[InteractionRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _every_claim_is_sourced(self) -> KnowledgeData:
        known = {s.id for s in self.sources}
        if len(known) != len(self.sources):
            raise ValueError("two sources share an id")
        family_ids = {f.id for f in self.families}
        for family in self.families:
            for source_id in _claim_sources(family):
                if source_id not in known:
                    raise ValueError(f"family {family.id!r} cites unknown source {source_id!r}")
            for other in family.also_excludes:
                if other not in family_ids:
                    raise ValueError(f"family {family.id!r}: also_excludes unknown family {other!r}")
        inci_names: set[str] = set()
        for ingredient in self.ingredients:
            if ingredient.inci in inci_names:
                raise ValueError(f"ingredient {ingredient.inci!r} is listed twice")
            inci_names.add(ingredient.inci)
            for source_id in _claim_sources(ingredient):
                if source_id not in known:
                    raise ValueError(f"ingredient {ingredient.inci!r} cites unknown source {source_id!r}")
            if ingredient.family and ingredient.family not in family_ids:
                raise ValueError(f"ingredient {ingredient.inci!r}: unknown family {ingredient.family!r}")
        rule_ids: set[str] = set()
        for rule in self.interactions:
            if rule.id in rule_ids:
                raise ValueError(f"interaction {rule.id!r} is listed twice")
            rule_ids.add(rule.id)
            if rule.source_id not in known:
                raise ValueError(f"interaction {rule.id!r} cites unknown source {rule.source_id!r}")
            for key in (rule.a, rule.b):
                resolves = (
                    key[len("family:") :] in family_ids if key.startswith("family:") else key in inci_names
                )
                if not resolves:
                    raise ValueError(
                        f"interaction {rule.id!r}: {key!r} is neither 'family:<id>' of a known family "
                        "nor a canonical INCI name"
                    )
            families_of_rule = {k[len("family:") :] for k in (rule.a, rule.b) if k.startswith("family:")}
            for name in rule.exempt:
                member = next((i for i in self.ingredients if i.inci == name), None)
                if member is None or member.family not in families_of_rule:
                    raise ValueError(
                        f"interaction {rule.id!r}: exempt {name!r} is not a canonical INCI name in one of "
                        "the rule's families"
                    )
        return self
