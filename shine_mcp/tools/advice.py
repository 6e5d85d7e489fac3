"""Advice tools: `recommend_products` and `build_routine`, from stated concerns, the caller's profile and
their skin reports, never breaking a hard limit (avoided ingredients, pregnancy, budget, preferences).

The ranking is `advice.recommender`, the routine's planning `advice.routine`; these tools read the
arguments, call them and shape the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.advice.catalog_index import CatalogIndex
from shine_mcp.advice.inputs import (
    GUIDANCE,
    AvoidArg,
    ConcernsArg,
    ReasonOut,
    ReportIdArg,
    SkinTypeArg,
    UsedNeeds,
    gather_needs,
    reason_out,
    used,
)
from shine_mcp.advice.needs import Needs, VocabularyError, check_vocabulary
from shine_mcp.advice.ranking import explain
from shine_mcp.advice.recommender import Picked, Prepared, Recommender, cautions, main_currency
from shine_mcp.advice.routine import (
    COMPLETE,
    MINIMAL,
    Plan,
    Profile,
    RoutineImpossible,
    candidate_groups,
    plan_routine,
    routine_warnings,
)
from shine_mcp.advice.season import Season
from shine_mcp.auth.identity import Caller, current_user
from shine_mcp.knowledge import load_knowledge
from shine_mcp.money import Money
from shine_mcp.services import Services
from shine_mcp.store.profiles import Profile as SavedProfile
from shine_mcp.store.views import ProductCard, card_of
from shine_mcp.vocabulary import CATEGORIES

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
STEP_REASON_KINDS = frozenset({"concern", "skin_type", "sensitive", "season", "similar", "stock", "rating"})
EMPTY_CATALOG = "the catalog is empty; an admin can load products with `shine catalog import`"


class Recommendation(BaseModel):
    product: ProductCard
    score: float = Field(description="0-1ish; only the order matters.")
    reasons: list[ReasonOut] = Field(description="Why it ranks here, each ingredient claim with its source.")
    cautions: list[str] = Field(description="What to watch, e.g. sun sensitivity: wear sunscreen.")


class Recommendations(BaseModel):
    products: list[Recommendation]
    used: UsedNeeds
    excluded: int = Field(
        description="Products left out by your hard limits (avoided ingredients, pregnancy, budget…)."
    )
    suggestions: list[str] = Field(description="What to change when few or no products fit.")
    notice: str


class RoutineStep(BaseModel):
    step: str = Field(description="Cleanse, Tone, Treat, Eye care, Moisturise, Sunscreen.")
    order: int = Field(description="Apply in this order within the slot.")
    product: ProductCard
    when: str = Field(description="daily, alternate nights (A/B), 2-3 evenings a week…")
    reasons: list[ReasonOut]


class DroppedStep(BaseModel):
    step: str = Field(description="The step left out, as in dropped_steps.")
    reason: str = Field(description="Why, in words for the shopper.")
    cheapest_with_it: Money | None = Field(
        description="When the budget left it out: the least the routine costs with this step kept too."
    )


class Routine(BaseModel):
    am: list[RoutineStep]
    pm: list[RoutineStep]
    total: Money = Field(
        description="The distinct products together (a product used morning and night counts once)."
    )
    budget: Money | None
    dropped_steps: list[str] = Field(description="Steps left out to stay within the budget or the catalog.")
    dropped: list[DroppedStep] = Field(description="The same steps, each with why and what keeping it costs.")
    cheapest_complete_total: Money | None = Field(
        description="When the budget left steps out: the least a routine with every step costs."
    )
    schedule_notes: list[ReasonOut] = Field(
        description="How clashing actives were separated, with the source."
    )
    warnings: list[str]
    used: UsedNeeds
    notice: str


def _check_category(category: str | None) -> str | None:
    if category is None:
        return None
    try:
        return check_vocabulary([category], CATEGORIES, "category")[0]
    except VocabularyError as exc:
        raise ToolError(str(exc)) from exc


class AdviceTools:
    """The advice tools of one server and what they share: the recommender (catalog index, knowledge base)
    and the products whose actives routines remember (see `Compatibility`)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.recommender = Recommender(services, load_knowledge())
        self.kb = self.recommender.kb
        self.profiles: dict[tuple[str, tuple[str, ...]], Profile] = {}

    async def _needs(
        self,
        caller: Caller,
        index: CatalogIndex,
        *,
        report_id: str | None,
        concerns: list[str] | None,
        skin_type: str | None,
        budget: float | None,
        avoid: list[str] | None,
    ) -> tuple[Needs, SavedProfile | None, Season | None]:
        return await gather_needs(
            self.services, caller, report_id=report_id, concerns=concerns, skin_type=skin_type,
            budget=budget, currency=main_currency(index), avoid=avoid,
        )  # fmt: skip

    async def recommend_products(
        self,
        ctx: Context,
        report_id: ReportIdArg = None,
        concerns: ConcernsArg = None,
        skin_type: SkinTypeArg = None,
        budget: Annotated[
            float | None,
            Field(le=100_000, description="Most to pay per product, in the shop's currency (25 = $25.00)."),
        ] = None,
        category: Annotated[
            str | None, Field(max_length=30, description=f"One of: {', '.join(CATEGORIES)}.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=20)] = 5,
        avoid_ingredients: AvoidArg = None,
    ) -> Recommendations:
        """Recommend products for a person, ranked, each with reasons they can check (the ingredient that
        targets their concern, with its source; skin type; budget; what similar people liked).

        Use it when the shopper asks what to use for a concern or which product suits them.

        Uses the caller's profile (update_profile) and avoid_ingredients for avoided ingredients, pregnancy, preferences and
        season; never returns a product with an avoided ingredient or one not advised in pregnancy.
        Arguments given here take precedence over the profile; a report_id adds what the photo measured."""
        caller = current_user(ctx, self.services.settings)
        chosen_category = _check_category(category)
        index = await self.recommender.index.get()
        needs, profile, season = await self._needs(
            caller, index, report_id=report_id, concerns=concerns, skin_type=skin_type, budget=budget,
            avoid=avoid_ingredients,
        )  # fmt: skip
        if len(index) == 0:
            raise ToolError(EMPTY_CATALOG)
        prepared = await self.recommender.prepare(caller, needs, season, index, needs.budget_minor)
        categories = [chosen_category] if chosen_category else None
        picked, excluded_count = await self.recommender.pick(prepared, categories, limit)
        return Recommendations(
            products=[self._recommendation(prepared, season, chosen) for chosen in picked],
            used=used(needs, profile, season, report_id),
            excluded=excluded_count,
            suggestions=await self.recommender.suggestions(prepared, chosen_category, picked, limit),
            notice=GUIDANCE,
        )

    def _recommendation(self, prepared: Prepared, season: Season | None, chosen: Picked) -> Recommendation:
        product, score, similar = chosen
        needs = prepared.needs
        reasons = explain(
            product, self.kb, needs, prepared.excluded, season=season, similar=similar,
            budget_minor=needs.budget_minor,
        )  # fmt: skip
        return Recommendation(
            product=card_of(product, base_url=self.services.settings.base_url),
            score=round(score, 4),
            reasons=[reason_out(r) for r in reasons],
            cautions=cautions(self.kb, product),
        )

    async def build_routine(
        self,
        ctx: Context,
        report_id: ReportIdArg = None,
        concerns: ConcernsArg = None,
        budget: Annotated[
            float | None,
            Field(le=100_000, description="Most to pay for the whole routine, in the shop's currency."),
        ] = None,
        style: Annotated[
            Literal["minimal", "complete"],
            Field(
                description="minimal: cleanse, treat, moisturise, sunscreen; complete adds toner, eye care, a second treatment."
            ),
        ] = "minimal",
        skin_type: SkinTypeArg = None,
        avoid_ingredients: AvoidArg = None,
    ) -> Routine:
        """Build a morning (AM) and evening (PM) routine: steps in order, one product per step, sunscreen
        every morning, the total within budget, and no clashing actives in one slot (split morning/evening
        or alternate nights, with the source).

        Use it when the shopper asks for a whole routine, or what to use morning and evening.

        Uses the caller's profile (avoided ingredients, pregnancy, preferences, season) like
        recommend_products. Each step says why that product; warnings say how to start safely."""
        caller = current_user(ctx, self.services.settings)
        index = await self.recommender.index.get()
        if len(index) == 0:
            raise ToolError(EMPTY_CATALOG)
        needs, profile, season = await self._needs(
            caller, index, report_id=report_id, concerns=concerns, skin_type=skin_type, budget=budget,
            avoid=avoid_ingredients,
        )  # fmt: skip
        specs = COMPLETE if style == "complete" else MINIMAL
        prepared = await self.recommender.prepare(caller, needs, season, index, needs.budget_minor)
        by_group = await self.recommender.pick_groups(prepared, candidate_groups(specs))
        try:
            plan = plan_routine(self.kb, specs, prepared, by_group, self.profiles)
        except RoutineImpossible as exc:
            raise ToolError(str(exc)) from None
        steps = self._routine_steps(plan, prepared, season)
        currency, budget_minor, choice = needs.currency or "USD", needs.budget_minor, plan.choice
        distinct = {p.product.id: p.product for p in plan.schedule.steps}
        return Routine(
            am=steps["am"],
            pm=steps["pm"],
            total=Money.of(sum(p.price_minor for p in distinct.values()), currency),
            budget=Money.maybe(budget_minor, currency),
            dropped_steps=[d.label for d in choice.dropped],
            dropped=[
                DroppedStep(
                    step=d.label,
                    reason=d.reason(budget_minor, currency),
                    cheapest_with_it=Money.maybe(d.cheapest_with_it, currency),
                )
                for d in choice.dropped
            ],
            cheapest_complete_total=Money.maybe(choice.cheapest_complete, currency),
            schedule_notes=self._schedule_notes(plan),
            warnings=routine_warnings(self.kb, specs, plan, needs.pregnant),
            used=used(needs, profile, season, report_id),
            notice=GUIDANCE,
        )

    def _routine_steps(
        self, plan: Plan, prepared: Prepared, season: Season | None
    ) -> dict[str, list[RoutineStep]]:
        """Each slot's steps in order, each with why that product (limits that hold for every step are
        said once, in `used`)."""
        steps: dict[str, list[RoutineStep]] = {"am": [], "pm": []}
        for number, placed in enumerate(plan.schedule.steps):
            reasons = [
                reason_out(r)
                for r in explain(
                    placed.product,
                    self.kb,
                    prepared.needs,
                    prepared.excluded,
                    season=season,
                    similar=plan.similar.get(placed.product.id, 0.0),
                    budget_minor=None,
                )  # fmt: skip
                if r.kind in STEP_REASON_KINDS
            ][:4]
            for slot in placed.slots:
                label = "Sunscreen" if placed.spec.key == "protect" else placed.spec.label
                steps[slot].append(
                    RoutineStep(
                        step=label,
                        order=number,
                        product=card_of(placed.product, base_url=self.services.settings.base_url),
                        when=placed.when.get(slot, "daily"),
                        reasons=reasons,
                    )
                )
        for slot in steps:
            for position, step in enumerate(steps[slot], start=1):
                step.order = position
        return steps

    def _schedule_notes(self, plan: Plan) -> list[ReasonOut]:
        return [
            ReasonOut(
                text=text,
                kind="schedule",
                source=self.kb.source(rule.source_id).title if rule else "",
                source_url=self.kb.source(rule.source_id).url if rule else "",
            )
            for text, rule in plan.schedule.notes
        ]


def register(server: MCPServer, services: Services) -> None:
    tools = AdviceTools(services)
    server.tool(annotations=READ_ONLY)(tools.recommend_products)
    server.tool(annotations=READ_ONLY)(tools.build_routine)
