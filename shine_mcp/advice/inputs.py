"""What the advice and profile tools share: the arguments that name concerns, skin type and ingredients, the
caller's needs read from those arguments, their profile and a skin report, and the shapes that explain them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from shine_mcp.advice.needs import (
    Needs,
    VocabularyError,
    check_concerns,
    check_skin_type,
    report_concerns,
    report_skin_type,
)
from shine_mcp.advice.ranking import Reason
from shine_mcp.advice.season import Season, season_for
from shine_mcp.auth.identity import Caller
from shine_mcp.money import Money, MoneyError, to_minor_rounded
from shine_mcp.services import Services
from shine_mcp.store.profiles import Profile, get_profile
from shine_mcp.store.skin_reports import get_report
from shine_mcp.vocabulary import CONCERNS, Kind, UnknownWord, understand

GUIDANCE = (
    "Cosmetic guidance from published ingredient evidence, not medical advice: it cannot diagnose or treat "
    "a skin condition. Patch test new products; see a dermatologist for persistent acne, a changing mole, "
    "pain or infection, and ask a doctor or pharmacist before using actives in pregnancy."
)
CONCERNS_HELP = f"Concerns from this list: {', '.join(CONCERNS)}."
# Arguments the advice tools share; checked in code so a typo gets the closest word, not a schema error.
ReportIdArg = Annotated[
    str | None, Field(max_length=60, description="A skin report (rep_…) whose measurements add concerns.")
]
ConcernsArg = Annotated[list[str] | None, Field(max_length=8, description=CONCERNS_HELP)]
SkinTypeArg = Annotated[
    str | None, Field(max_length=20, description="normal, dry, oily, combination or sensitive.")
]
# Ingredient or family words as a shopper types them ('lanolin', 'drying alcohol').
IngredientWords = list[Annotated[str, Field(min_length=2, max_length=80)]]
AvoidArg = Annotated[
    IngredientWords | None,
    Field(
        max_length=20,
        description="Ingredients or families to avoid for this call, on top of the profile's: 'lanolin', "
        "'fragrance', 'retinol'. Use it for an allergy mentioned in the chat; update_profile keeps it.",
    ),
]


class ReasonOut(BaseModel):
    text: str
    kind: str = Field(
        description="concern, skin_type, sensitive, avoid, preference, rating, budget, season, similar, stock"
    )
    source: str = Field(default="", description="The publication behind an ingredient claim; empty if none.")
    source_url: str = ""


def reason_out(reason: Reason) -> ReasonOut:
    return ReasonOut(
        text=reason.text, kind=reason.kind, source=reason.source or "", source_url=reason.source_url or ""
    )


class NeedOut(BaseModel):
    concern: str
    origin: str = Field(
        description="asked (this call), profile, report (skin report), skin_type (typical for it)"
    )
    detail: str | None = Field(default=None, description="For a report: what was measured.")


class UsedNeeds(BaseModel):
    """What the ranking worked from, so a person can correct it."""

    concerns: list[NeedOut]
    skin_type: str | None
    sensitive: bool
    avoid: list[str] = Field(
        description="Ingredients and families never recommended (allergies, sensitivities)."
    )
    pregnant_or_nursing: bool
    preferences: list[str]
    budget: Money | None
    season: str | None = Field(description="The season and why, when a country or hemisphere is known.")
    profile_used: bool
    report_id: str | None


def vocabulary_words(words: list[str], kind: Kind) -> tuple[list[str], list[str]]:
    """A tool argument's words as vocabulary values, with the notes to show the shopper
    ('melasma' is saved as dark_spots, with a note to see a dermatologist)."""
    try:
        return understand(words, kind)
    except UnknownWord as exc:
        raise ToolError(str(exc)) from exc


async def gather_needs(
    services: Services,
    caller: Caller,
    *,
    report_id: str | None,
    concerns: list[str] | None,
    skin_type: str | None,
    budget: float | None,
    currency: str,
    avoid: list[str] | None = None,
    today: datetime | None = None,
) -> tuple[Needs, Profile | None, Season | None]:
    """Needs from this call's arguments, else the caller's profile, else their skin report."""
    if budget is not None and budget <= 0:
        raise ToolError("budget must be more than 0; leave it out for no price limit")
    try:
        # Shoppers' words first ('wrinkles' is fine_lines), then the closed vocabulary's own check.
        asked = check_concerns(vocabulary_words(concerns or [], "concern")[0])
        asked_type = check_skin_type(vocabulary_words([skin_type], "skin_type")[0][0]) if skin_type else None
    except VocabularyError as exc:
        raise ToolError(str(exc)) from exc
    profile = await get_profile(services.db, caller.user_id)
    needs = Needs()
    for concern in asked:
        needs.add(concern, "asked")
    if profile is not None:
        for concern in profile.concerns:
            needs.add(concern, "profile")
    if report_id is not None:
        record = await get_report(services.db, caller.user_id, report_id.strip())
        if record is None:
            raise ToolError(f"you have no skin report with id {report_id!r}; list_skin_reports lists yours")
        for concern, detail in report_concerns(record.analysis):
            needs.add(concern, "report", detail)
        report_type, report_sensitive = report_skin_type(record.analysis)
        needs.sensitive = needs.sensitive or report_sensitive
        if report_type:
            needs.skin_type, needs.skin_type_origin = report_type, "report"
    if profile is not None and profile.skin_type:
        needs.skin_type, needs.skin_type_origin = profile.skin_type, "profile"
    if asked_type:
        needs.skin_type, needs.skin_type_origin = asked_type, "asked"
    if profile is not None:
        needs.avoid = list(dict.fromkeys([*profile.avoid_ingredients, *profile.sensitivities]))
        needs.pregnant = profile.pregnant_or_nursing
        needs.preferences = list(profile.preferences)
        needs.country, needs.hemisphere = profile.country, profile.hemisphere
    asked_avoid = [" ".join(w.lower().split()) for w in avoid or [] if w.strip()]
    needs.avoid = list(dict.fromkeys([*needs.avoid, *asked_avoid]))
    needs.sensitive = (
        needs.sensitive
        or needs.skin_type == "sensitive"
        or any(c.concern == "sensitivity" for c in needs.concerns)
        or bool(profile and profile.sensitivities)
    )
    needs.currency = currency
    if budget is not None:
        try:
            needs.budget_minor = to_minor_rounded(budget, currency)
        except MoneyError as exc:
            raise ToolError(str(exc)) from exc
        if needs.budget_minor <= 0:
            raise ToolError("budget is too small to buy anything; leave it out for no price limit")
    elif profile is not None and profile.budget_minor and profile.currency == currency:
        needs.budget_minor = profile.budget_minor
    season = season_for(needs.country, needs.hemisphere, (today or datetime.now(UTC)).date())
    return needs, profile, season


def used(needs: Needs, profile: Profile | None, season: Season | None, report_id: str | None) -> UsedNeeds:
    return UsedNeeds(
        concerns=[NeedOut(concern=c.concern, origin=c.origin, detail=c.detail) for c in needs.concerns],
        skin_type=needs.skin_type,
        sensitive=needs.sensitive,
        avoid=needs.avoid,
        pregnant_or_nursing=needs.pregnant,
        preferences=needs.preferences,
        budget=Money.maybe(needs.budget_minor, needs.currency),
        season=f"{season.name}: {season.reason}" if season else None,
        profile_used=profile is not None,
        report_id=report_id,
    )
