"""Advice tools: `recommend_products` and `build_routine`, from stated concerns, the caller's profile and
their skin reports, never breaking a hard limit (avoided ingredients, pregnancy, budget, preferences)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.advice.catalog_index import CatalogIndex, IndexCache
from shine_mcp.advice.collaborative import similar_people_scores
from shine_mcp.advice.needs import Needs, VocabularyError, check_vocabulary
from shine_mcp.advice.ranking import (
    Exclusions,
    best,
    cheapest,
    exclusions,
    explain,
    hard_mask,
    scores,
    violations,
)
from shine_mcp.advice.routine import (
    COMPLETE,
    MINIMAL,
    BudgetTooSmall,
    Candidate,
    Profile,
    choose,
    firm_clash_inside,
    schedule,
)
from shine_mcp.advice.season import Season
from shine_mcp.identity import Caller, current_user
from shine_mcp.knowledge import KnowledgeBase, load_knowledge
from shine_mcp.money import Money, format_money
from shine_mcp.services import Services
from shine_mcp.store.catalog import catalog_fingerprint, index_rows, read_products
from shine_mcp.store.profiles import feedback_generation
from shine_mcp.store.signals import Signals, collaborative_signals
from shine_mcp.store.tables import ProductRow
from shine_mcp.store.views import ProductCard, card_of
from shine_mcp.tools._advice_inputs import (
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
from shine_mcp.vocabulary import CATEGORIES

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
CANDIDATES_PER_STEP = 8
CHEAP_PER_STEP = 4
TREATMENT_CANDIDATES = 12  # deeper: a second treatment must bring a different active
SIGNALS_TTL = 60.0
JUST_ABOVE = 0.2  # "just over the budget": up to a fifth more
STEP_REASON_KINDS = frozenset({"concern", "skin_type", "sensitive", "season", "similar", "stock", "rating"})
SIGNALS_CACHED = 10_000  # people whose neighbourhood is remembered at once
PROFILES_KEPT = 50_000  # products whose actives a routine remembers at once
ROUTINE_WARNINGS = (
    "Introduce one new product at a time, about two weeks apart, so you know what suits you.",
    "Patch test each new product on a small area (inside the forearm or behind the ear) for a few days first.",
    "Sunscreen every morning, reapplied when you are outdoors: it matters most when you use exfoliating acids or retinoids.",
)


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


def main_currency(index: CatalogIndex) -> str:
    if not index.currencies:
        return "USD"
    counts = np.bincount(index.currency, minlength=len(index.currencies))
    return index.currencies[int(counts.argmax())]


@dataclass
class Prepared:
    index: CatalogIndex
    needs: Needs
    excluded: Exclusions
    mask: np.ndarray
    score: np.ndarray
    by_product: dict[str, float]
    max_price_minor: int | None
    any_price: np.ndarray  # `mask` before the price limit


class Advisor:
    """The per-server state of the advice tools: the catalog index and the knowledge base."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.kb: KnowledgeBase = load_knowledge()
        self._signal_cache: dict[tuple[str, str | None], tuple[int, float, Signals]] = {}
        self.index = IndexCache(
            lambda: index_rows(services.db), lambda: catalog_fingerprint(services.db), self.kb
        )
        self.profiles: dict[tuple[str, tuple[str, ...]], Profile] = {}  # for routines: see `Compatibility`

    async def _signals(self, user_id: str, skin_type: str | None) -> Signals:
        """Reading what neighbours did is the costly part of a recommendation: kept for `SIGNALS_TTL`
        seconds, and dropped as soon as anyone in this process rates a product or edits a profile
        (carts and orders of others may be up to a minute old in the signal, never in the results)."""
        key = (user_id, skin_type)
        now = time.monotonic()
        cached = self._signal_cache.get(key)
        if cached is not None and cached[0] == feedback_generation() and now - cached[1] < SIGNALS_TTL:
            return cached[2]
        generation = feedback_generation()
        signals = await collaborative_signals(self.services.db, user_id, skin_type)
        if len(self._signal_cache) > SIGNALS_CACHED:
            self._signal_cache.clear()
        self._signal_cache[key] = (generation, now, signals)
        return signals

    async def similar(
        self, caller: Caller, needs: Needs, index: CatalogIndex
    ) -> tuple[np.ndarray | None, dict[str, float], dict[str, float]]:
        signals = await self._signals(caller.user_id, needs.skin_type)
        me = (needs.skin_type, frozenset(c.concern for c in needs.concerns))
        array, by_product = similar_people_scores(signals, me, index)
        return array, by_product, signals.mine

    async def prepare(
        self,
        caller: Caller,
        needs: Needs,
        season: Season | None,
        index: CatalogIndex,
        max_price_minor: int | None,
    ) -> Prepared:
        """The hard-limit mask and the scores of every product for this person, computed once per call."""
        excluded = exclusions(self.kb, needs)
        assert needs.currency is not None
        any_price = hard_mask(
            index, needs, excluded, categories=None, currency=needs.currency, max_price_minor=None
        )
        similar, by_product, mine = await self.similar(caller, needs, index)
        for product_id, weight in mine.items():  # something you rated 1-2 stars is not suggested again
            at = index.position.get(product_id)
            if at is not None and weight < 0:
                any_price[at] = False
        mask = any_price if max_price_minor is None else any_price & (index.price <= max_price_minor)
        score = scores(index, needs, budget_minor=needs.budget_minor, season=season, similar=similar)
        return Prepared(index, needs, excluded, mask, score, by_product, max_price_minor, any_price)

    async def just_above(
        self, prepared: Prepared, categories: list[str] | None, than: float | None
    ) -> ProductRow | None:
        """The best product a little over the price limit (up to `JUST_ABOVE` more) that ranks above
        `than` (None: above nothing) and keeps every other limit."""
        index, limit = prepared.index, prepared.max_price_minor
        if limit is None:
            return None
        window = (
            prepared.any_price & (index.price > limit) & (index.price <= limit + round(limit * JUST_ABOVE))
        )
        if categories:
            window &= index.in_categories(categories)
        found = [
            p for p in best(index, window, prepared.score, 3) if than is None or prepared.score[p] > than
        ]
        if not found:
            return None
        fresh = await read_products(self.services.db, [index.ids[p] for p in found])
        for position in found:
            product = fresh.get(index.ids[position])
            if (
                product is not None
                and product.price_minor > limit
                and not violations(product, self.kb, prepared.needs, prepared.excluded)
            ):
                return product
        return None

    async def pick_groups(
        self, prepared: Prepared, groups: dict[tuple[str, ...], int]
    ) -> dict[tuple[str, ...], list[tuple[ProductRow, float, float]]]:
        """`pick` for several category groups in one database read (a routine's steps); a group that
        loses products to the re-check is completed by its own `pick`."""
        index = prepared.index
        positions: dict[tuple[str, ...], list[int]] = {}
        for categories, count in groups.items():
            allowed = prepared.mask & index.in_categories(categories)
            found = best(index, allowed, prepared.score, count)
            if prepared.max_price_minor is not None:  # a tight budget needs the cheap options too
                found += [p for p in cheapest(index, allowed, CHEAP_PER_STEP) if p not in found]
            positions[categories] = found
        wanted = sorted({p for found in positions.values() for p in found})
        fresh = await read_products(self.services.db, [index.ids[p] for p in wanted])
        out: dict[tuple[str, ...], list[tuple[ProductRow, float, float]]] = {}
        for categories, found in positions.items():
            kept = []
            for position in found:
                product = fresh.get(index.ids[position])
                if product is not None and self._allowed(prepared, product):
                    kept.append(
                        (product, float(prepared.score[position]), prepared.by_product.get(product.id, 0.0))
                    )
                else:
                    prepared.mask[position] = False
            if len(kept) < len(found):
                again, _ = await self.pick(prepared, list(categories), groups[categories])
                kept += [c for c in again if c[0].id not in {k[0].id for k in kept}]
            out[categories] = kept
        return out

    def _allowed(self, prepared: Prepared, product: ProductRow) -> bool:
        limit = prepared.max_price_minor
        return not violations(product, self.kb, prepared.needs, prepared.excluded) and (
            limit is None or product.price_minor <= limit
        )

    async def pick(
        self, prepared: Prepared, categories: list[str] | None, count: int
    ) -> tuple[list[tuple[ProductRow, float, float]], int]:
        """The best `count` products in `categories` as they are now in the database, each re-checked
        against the hard limits; and how many products of those categories the limits excluded."""
        index = prepared.index
        in_categories = index.in_categories(categories) if categories else np.ones(len(index), bool)
        mask = prepared.mask & in_categories
        excluded_count = int(in_categories.sum() - mask.sum())
        picked: list[tuple[ProductRow, float, float]] = []
        want = count
        tried: set[int] = set()
        while len(picked) < count:
            positions = [p for p in best(index, mask, prepared.score, want + 5) if p not in tried]
            if not positions:
                break
            tried.update(positions)
            fresh = await read_products(self.services.db, [index.ids[p] for p in positions])
            for position in positions:
                product = fresh.get(index.ids[position])
                if product is None or not self._allowed(prepared, product):
                    mask[position] = False
                    prepared.mask[position] = False
                    continue
                picked.append(
                    (product, float(prepared.score[position]), prepared.by_product.get(product.id, 0.0))
                )
                if len(picked) == count:
                    break
            want *= 2
        return picked, excluded_count


def _cautions(kb: KnowledgeBase, product: ProductRow) -> list[str]:
    seen: dict[str, str] = {}
    for name in product.ingredients:
        for caution in kb.cautions(name):
            if caution.kind in ("photosensitivity", "irritation", "allergen") and caution.kind not in seen:
                seen[caution.kind] = f"{kb.canonical(name) or name}: {caution.advice}"
    return list(seen.values())


def register(server: MCPServer, services: Services) -> Advisor:
    advisor = Advisor(services)
    kb = advisor.kb

    @server.tool(annotations=READ_ONLY)
    async def recommend_products(
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

        Uses the caller's profile (update_profile) and avoid_ingredients for avoided ingredients, pregnancy, preferences and
        season; never returns a product with an avoided ingredient or one not advised in pregnancy.
        Arguments given here take precedence over the profile; a report_id adds what the photo measured."""
        caller = current_user(ctx, services.settings)
        chosen_category = _check_category(category)
        index = await advisor.index.get()
        currency = main_currency(index)
        needs, profile, season = await gather_needs(
            services, caller, report_id=report_id, concerns=concerns, skin_type=skin_type,
            budget=budget, currency=currency, avoid=avoid_ingredients,
        )  # fmt: skip
        if len(index) == 0:
            raise ToolError("the catalog is empty; an admin can load products with `shine catalog import`")
        prepared = await advisor.prepare(caller, needs, season, index, needs.budget_minor)
        picked, excluded_count = await advisor.pick(
            prepared, [chosen_category] if chosen_category else None, limit
        )
        excluded = prepared.excluded
        suggestions: list[str] = []
        if not needs.concerns and not needs.skin_type:
            suggestions.append(
                "name a concern or skin type (or save them with update_profile): these picks only follow "
                "ratings and price"
            )
        if len(picked) < limit:
            if needs.budget_minor is not None:
                suggestions.append("raise the budget: few products fit under it")
            if needs.avoid or needs.preferences:
                suggestions.append(
                    "your avoided ingredients and preferences rule out many products; review them with get_profile"
                )
            if chosen_category:
                suggestions.append("try without a category")
        if needs.budget_minor is not None:
            above = await advisor.just_above(
                prepared, [chosen_category] if chosen_category else None, picked[0][1] if picked else None
            )
            if above is not None:
                price = format_money(above.price_minor, currency)
                suggestions.append(
                    f"{above.name} ({above.brand}, {price}) is just over your "
                    f"{format_money(needs.budget_minor, currency)} budget and "
                    + ("suits you better than these" if picked else "fits everything else you asked for")
                )
        return Recommendations(
            products=[
                Recommendation(
                    product=card_of(product, base_url=services.settings.base_url),
                    score=round(score, 4),
                    reasons=[
                        reason_out(r)
                        for r in explain(
                            product,
                            kb,
                            needs,
                            excluded,
                            season=season,
                            similar=similar,
                            budget_minor=needs.budget_minor,
                        )  # fmt: skip
                    ],
                    cautions=_cautions(kb, product),
                )
                for product, score, similar in picked
            ],
            used=used(needs, profile, season, report_id),
            excluded=excluded_count,
            suggestions=suggestions,
            notice=GUIDANCE,
        )

    @server.tool(annotations=READ_ONLY)
    async def build_routine(
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

        Uses the caller's profile (avoided ingredients, pregnancy, preferences, season) like
        recommend_products. Each step says why that product; warnings say how to start safely."""
        caller = current_user(ctx, services.settings)
        index = await advisor.index.get()
        if len(index) == 0:
            raise ToolError("the catalog is empty; an admin can load products with `shine catalog import`")
        currency = main_currency(index)
        needs, profile, season = await gather_needs(
            services, caller, report_id=report_id, concerns=concerns, skin_type=skin_type,
            budget=budget, currency=currency, avoid=avoid_ingredients,
        )  # fmt: skip
        total_budget = needs.budget_minor
        specs = COMPLETE if style == "complete" else MINIMAL
        candidates: dict[str, list[Candidate]] = {}
        reasons_of: dict[str, float] = {}
        treatment_ids: set[str] = set()
        prepared = await advisor.prepare(caller, needs, season, index, total_budget)
        groups = {
            spec.categories: CANDIDATES_PER_STEP if spec.slots else TREATMENT_CANDIDATES for spec in specs
        }
        by_group = await advisor.pick_groups(prepared, groups)
        for spec in specs:
            picked = by_group[spec.categories]
            found = []
            for product, score, similar in picked:
                if not spec.slots:
                    if firm_clash_inside(kb, product):
                        continue
                    treatment_ids.add(product.id)
                found.append(Candidate(product, score))
                reasons_of[product.id] = similar
            candidates[spec.key] = found
        if not candidates.get("protect"):
            sunscreens = hard_mask(
                index,
                needs,
                prepared.excluded,
                categories=["sunscreen"],
                currency=currency,
                max_price_minor=None,
            )
            if total_budget is not None and sunscreens.any():
                cheapest = int(index.price[sunscreens].min())
                raise ToolError(
                    f"the cheapest sunscreen that fits your limits costs {format_money(cheapest, currency)}; "
                    "a routine starts with sunscreen every morning, so raise the budget to at least that"
                )
            raise ToolError(
                "no sunscreen in the catalog fits your limits (avoided ingredients, preferences, pregnancy); "
                "a routine needs one every morning: loosen a limit with update_profile"
            )
        try:
            if len(advisor.profiles) > PROFILES_KEPT:
                advisor.profiles.clear()
            concerns_named = {c.concern for c in needs.concerns}
            routine_choice = choose(kb, specs, candidates, total_budget, concerns_named, advisor.profiles)
        except BudgetTooSmall as exc:
            raise ToolError(
                f"the cheapest sunscreen that fits your limits costs {format_money(exc.needed_minor, currency)}; "
                "a routine starts with sunscreen every morning, so raise the budget to at least that"
            ) from None
        chosen = routine_choice.products
        if "protect" not in chosen:
            raise ToolError(
                "could not find a sunscreen that goes with the rest of the routine; "
                "use recommend_products and check_ingredients to choose one"
            )
        plan = schedule(kb, specs, chosen)
        excluded = prepared.excluded
        steps: dict[str, list[RoutineStep]] = {"am": [], "pm": []}
        for number, placed in enumerate(plan.steps):
            reasons = [
                reason_out(r)
                for r in explain(
                    placed.product,
                    kb,
                    needs,
                    excluded,
                    season=season,
                    similar=reasons_of.get(placed.product.id, 0.0),
                    budget_minor=None,
                )  # fmt: skip
                if r.kind in STEP_REASON_KINDS  # limits that hold for every step are said once, in `used`
            ][:4]
            for slot in placed.slots:
                label = "Sunscreen" if placed.spec.key == "protect" else placed.spec.label
                steps[slot].append(
                    RoutineStep(
                        step=label,
                        order=number,
                        product=card_of(placed.product, base_url=services.settings.base_url),
                        when=placed.when.get(slot, "daily"),
                        reasons=reasons,
                    )  # fmt: skip
                )
        for slot in steps:
            for position, step in enumerate(steps[slot], start=1):
                step.order = position
        distinct = {p.product.id: p.product for p in plan.steps}
        total = sum(p.price_minor for p in distinct.values())
        warnings = list(ROUTINE_WARNINGS)
        essentials_dropped = [s.categories[0] for s in specs if s.essential and s.key not in chosen]
        if essentials_dropped:
            warnings.insert(
                0,
                f"The budget does not stretch to a {' and a '.join(essentials_dropped)}: add "
                f"{'them' if len(essentials_dropped) > 1 else 'it'} when you can (a basic one costs little), "
                "before anything else.",
            )
        if any(_cautions(kb, p) for p in distinct.values()):
            warnings.append(
                "Some products here can make skin more sun-sensitive or irritated: see each step."
            )
        if needs.pregnant:
            warnings.append(
                "Nothing here contains a retinoid; still show your routine to your doctor or midwife."
            )
        return Routine(
            am=steps["am"],
            pm=steps["pm"],
            total=Money.of(total, currency),
            budget=Money.maybe(total_budget, currency),
            dropped_steps=[d.label for d in routine_choice.dropped],
            dropped=[
                DroppedStep(
                    step=d.label,
                    reason=d.reason(total_budget, currency),
                    cheapest_with_it=Money.maybe(d.cheapest_with_it, currency),
                )
                for d in routine_choice.dropped
            ],
            cheapest_complete_total=Money.maybe(routine_choice.cheapest_complete, currency),
            schedule_notes=[
                ReasonOut(
                    text=text,
                    kind="schedule",
                    source=kb.source(rule.source_id).title if rule else "",
                    source_url=kb.source(rule.source_id).url if rule else "",
                )  # fmt: skip
                for text, rule in plan.notes
            ],
            warnings=warnings,
            used=used(needs, profile, season, report_id),
            notice=GUIDANCE,
        )

    return advisor
