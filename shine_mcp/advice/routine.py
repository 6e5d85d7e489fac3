"""Assembling a morning and evening routine from ranked candidates per step, and planning one for a person
(`plan_routine`: the candidates the recommender picked, the choice, the schedule, the warnings).

Rules, in the order they win:
1. every morning ends with sunscreen; a step is left out (and said so, with why and what keeping it would
   cost) only when the money cannot keep it beside the steps that matter more: the treatment for the
   shopper's concern ranks with sunscreen, then moisturiser and cleanser, then the optional steps;
2. one product per step; cleanser, toner, eye care and moisturiser serve both mornings and evenings;
3. the total of the distinct products stays within the budget, and among the routines that keep the same
   steps the one whose products fit the person best wins (an exact search, `advice.budget`);
4. no two actives that clash share a slot: a shared product never clashes with a treatment, and two
   treatments that clash are split morning/evening or put on alternate nights, as the rule says;
5. sun-sensitising actives (retinoids, AHAs, BHAs) go in the evening, vitamin C in the morning.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from shine_mcp.advice.budget import Option, Step, cheapest, optimise
from shine_mcp.advice.ranking import hard_mask
from shine_mcp.advice.recommender import Picked, Prepared, cautions
from shine_mcp.knowledge import InteractionRule, KnowledgeBase
from shine_mcp.money import format_money
from shine_mcp.store.tables import ProductRow

TREATMENT_CATEGORIES = ("serum", "spot_treatment", "exfoliant")
EVENING_FAMILIES = frozenset({"retinoid", "aha", "bha"})
# One product per active family in a routine: a second retinoid or acid adds irritation, not results.
ACTIVE_FAMILIES = frozenset({"retinoid", "aha", "bha", "pha", "benzoyl_peroxide", "vitamin_c"})
NIGHT_ONLY = frozenset({"retinoid"})  # never in a product used in the morning too
MORNING_FAMILIES = frozenset({"vitamin_c"})


@dataclass(frozen=True)
class StepSpec:
    key: str  # cleanse, tone, treat, treat_2, eye, moisturise, protect
    label: str
    categories: tuple[str, ...]
    slots: tuple[str, ...]  # "am", "pm" or both for a shared product
    essential: bool
    priority: int  # lower is kept first when the budget is tight


MINIMAL = (
    StepSpec("protect", "Sunscreen", ("sunscreen",), ("am",), True, 0),
    StepSpec("moisturise", "Moisturise", ("moisturiser",), ("am", "pm"), True, 1),
    StepSpec("cleanse", "Cleanse", ("cleanser",), ("am", "pm"), True, 2),
    StepSpec("treat", "Treat", TREATMENT_CATEGORIES, (), False, 3),
)
COMPLETE = (
    *MINIMAL,
    StepSpec("treat_2", "Treat", TREATMENT_CATEGORIES, (), False, 4),
    StepSpec("tone", "Tone", ("toner",), ("am", "pm"), False, 5),
    StepSpec("eye", "Eye care", ("eye_care",), ("am", "pm"), False, 6),
)
ORDER = {"cleanse": 0, "tone": 1, "treat": 2, "treat_2": 3, "eye": 4, "moisturise": 5, "protect": 6}


@dataclass
class Candidate:
    product: ProductRow
    score: float
    # Read once: the routine search touches these thousands of times, and ORM attribute reads are slow.
    id: str = field(init=False)
    price: int = field(init=False)
    ingredients: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.id, self.price, self.ingredients = (
            self.product.id,
            self.product.price_minor,
            list(self.product.ingredients),
        )


@dataclass
class Placed:
    spec: StepSpec
    product: ProductRow
    slots: tuple[str, ...]
    when: dict[str, str] = field(default_factory=dict)  # slot → "every morning", "alternate nights (A)"…


@dataclass
class Schedule:
    steps: list[Placed]
    notes: list[tuple[str, InteractionRule | None]]  # what was arranged and the rule behind it


class BudgetTooSmall(ValueError):
    def __init__(self, needed_minor: int) -> None:
        super().__init__(needed_minor)
        self.needed_minor = needed_minor


def families(kb: KnowledgeBase, product: ProductRow) -> set[str]:
    return {f for name in product.ingredients if (f := kb.family_of(name))}


def firm_clash_inside(kb: KnowledgeBase, product: ProductRow) -> bool:
    names = list(product.ingredients)
    return any(c.rule.severity == "avoid_same_slot" for c in kb.clashes(names, names))


def clash_rules(kb: KnowledgeBase, a: ProductRow, b: ProductRow) -> list[InteractionRule]:
    return [c.rule for c in kb.clashes(list(a.ingredients), list(b.ingredients))]


# A product's active families, and the ingredients of it some interaction rule names.
Profile = tuple[frozenset[str], tuple[str, ...]]


class Compatibility:
    """Which chosen products may share a routine, memoised: routines try many combinations of the same few
    dozen candidates, and only ingredients named by an interaction rule can make two products clash.

    `known` may be kept by the caller from one routine to the next: it is keyed by product and formula."""

    def __init__(self, kb: KnowledgeBase, known: dict[tuple[str, tuple[str, ...]], Profile] | None = None):
        self.kb = kb
        self._known = {} if known is None else known
        self._profiles: dict[str, Profile] = {}
        self._pairs: dict[frozenset[str], bool] = {}

    def profile(self, candidate: Candidate) -> Profile:
        found = self._profiles.get(candidate.id)
        if found is None:
            key = (candidate.id, tuple(candidate.ingredients))
            found = self._known.get(key)
            if found is None:
                kinds = {f for name in candidate.ingredients if (f := self.kb.family_of(name))}
                actives = tuple(self.kb.interacting(candidate.ingredients))
                found = self._known[key] = (frozenset(kinds & ACTIVE_FAMILIES), actives)
            self._profiles[candidate.id] = found
        return found

    def clash(self, a: Candidate, b: Candidate) -> bool:
        key = frozenset((a.id, b.id))
        found = self._pairs.get(key)
        if found is None:
            left, right = self.profile(a)[1], self.profile(b)[1]
            found = self._pairs[key] = bool(left and right and self.kb.clashes(left, right))
        return found

    def fits(self, spec: StepSpec, candidate: Candidate, chosen: Mapping[str, Candidate]) -> bool:
        """A shared product (cleanser, moisturiser…) must not clash with anything; treatments may clash
        with each other (the schedule separates them) but not with a shared product. No two products bring
        the same active family, and a product used mornings too holds no retinoid."""
        mine, my_actives = self.profile(candidate)
        if spec.slots and "am" in spec.slots and mine & NIGHT_ONLY:
            return False
        for other_key, other in chosen.items():
            theirs, their_actives = self.profile(other)
            if other.id == candidate.id or mine & theirs:
                return False
            both_treatments = not spec.slots and other_key.startswith("treat")
            if my_actives and their_actives and not both_treatments and self.clash(candidate, other):
                return False
        return True

    def kind(self, spec: StepSpec, candidate: Candidate) -> Hashable:
        """What `fits` looks at: a treatment may meet itself as the second treatment, so it is its own
        kind; shared products of one step with the same actives fit with the same things."""
        return candidate.id if not spec.slots else self.profile(candidate)


TREATMENT_WEIGHT = 1.5  # treatments carry the concerns: their fit counts for more in a routine's value
FIT_UNITS = 1000  # a product's fit, from its ranking score clamped to [-1, 2], in integer units
MAX_FIT_UNITS = round(FIT_UNITS * 3 * TREATMENT_WEIGHT)
# Keeping a step is worth more than the fit of every product together: a step is only left out when the
# money cannot keep it beside the steps above it, never to buy a better product elsewhere.
STEP_UNIT = 100_000
EYE_CONCERNS = frozenset({"dark_circles", "puffiness"})
NOT_TREATED = EYE_CONCERNS | {"sun_protection"}  # concerns a serum or spot treatment does not carry
NOUNS = {
    "cleanse": "cleanser",
    "tone": "toner",
    "treat": "treatment",
    "treat_2": "second treatment",
    "eye": "eye cream",
    "moisturise": "moisturiser",
    "protect": "sunscreen",
}


def step_weights(specs: tuple[StepSpec, ...], concerns: set[str]) -> dict[str, int]:
    """What keeping each step is worth. Each rank outranks every rank below it together; the sunscreen
    comes first, and the treatment for the shopper's concern (eye care for dark circles or puffiness)
    ranks with it. Without a concern the treatment follows the essentials (priority order)."""
    lifted = {"protect"}
    if concerns - NOT_TREATED:
        lifted.add("treat")
    if concerns & EYE_CONCERNS:
        lifted.add("eye")
    rest = sorted((s for s in specs if s.key not in lifted), key=lambda s: s.priority)
    ranks = [[s.key for s in specs if s.key in lifted], *([s.key] for s in rest)]
    return {key: STEP_UNIT << level for level, keys in enumerate(reversed(ranks)) for key in keys}


def fit_units(spec: StepSpec, candidate: Candidate) -> int:
    fit = min(max(candidate.score, -1.0), 2.0) + 1.0
    return round(FIT_UNITS * fit * (1.0 if spec.slots else TREATMENT_WEIGHT))


@dataclass(frozen=True)
class Dropped:
    spec: StepSpec
    why: Literal["budget", "clash", "catalog"]
    cheapest_with_it: int | None  # the least the routine costs with this step kept too (budget only)
    before: tuple[str, ...] = ()  # what the money went to first: the kept steps that rank as high or higher

    @property
    def noun(self) -> str:
        return NOUNS.get(self.spec.key, self.spec.label.lower())

    @property
    def label(self) -> str:
        return "Second treatment" if self.spec.key == "treat_2" else self.spec.label

    def reason(self, budget_minor: int | None, currency: str) -> str:
        """Why the step is left out, for the shopper."""
        if self.why == "catalog":
            limits = "avoided ingredients, preferences, pregnancy" + (", budget" if budget_minor else "")
            return f"no {self.noun} in the shop fits your limits ({limits})"
        if self.why == "clash" or self.cheapest_with_it is None or budget_minor is None:
            return f"every {self.noun} that fits your limits clashes with another product in this routine"
        text = (
            f"with a {self.noun} too the routine costs at least {format_money(self.cheapest_with_it, currency)}, "
            f"over your {format_money(budget_minor, currency)} budget"
        )
        if self.before:
            *others, last = self.before
            kept = f"{', '.join(others)} and {last}" if others else last
            text += f"; the {kept} {'come' if others else 'comes'} first"
        return text


@dataclass
class Chosen:
    products: dict[str, Candidate]  # step key → product
    dropped: list[Dropped]
    # When the budget left a step out: the least a routine with every step costs.
    cheapest_complete: int | None


def choose(
    kb: KnowledgeBase,
    specs: tuple[StepSpec, ...],
    candidates: dict[str, list[Candidate]],
    budget_minor: int | None,
    concerns: set[str],
    known: dict[tuple[str, tuple[str, ...]], Profile] | None = None,
) -> Chosen:
    """One product per step, compatible with each other, with the greatest value within the budget
    (`budget.optimise`, exact over the candidates); and the steps left out, each with why.

    Raises BudgetTooSmall when the budget cannot pay for a sunscreen. `known`: see `Compatibility`."""
    compat = Compatibility(kb, known)
    weights = step_weights(specs, concerns)
    by_key = {s.key: s for s in specs}
    # Most valuable first, the second treatment beside the first: it draws on the same products, which the
    # bound may count twice, so the search learns early that it cannot.
    order = sorted(specs, key=lambda s: (-weights["treat" if s.key == "treat_2" else s.key], s.priority))
    steps = {
        spec.key: Step(
            spec.key,
            [
                Option(c, c.price, weights[spec.key] + fit_units(spec, c), compat.kind(spec, c))
                for c in candidates.get(spec.key, [])
            ],
            required=spec.key == "protect",
        )
        for spec in order
    }

    def compatible(key: str, candidate: Candidate, chosen: Mapping[str, Candidate]) -> bool:
        return compat.fits(by_key[key], candidate, chosen)

    found = optimise(list(steps.values()), budget_minor, compatible)
    if found is None:
        raise BudgetTooSmall(min((c.price for c in candidates.get("protect", [])), default=0))
    dropped: list[Dropped] = []
    for spec in specs:
        if spec.key in found.picked:
            continue
        if not steps[spec.key].options:
            dropped.append(Dropped(spec, "catalog", None))
            continue
        wanted = [step for key, step in steps.items() if key in found.picked or key == spec.key]
        kept_too = cheapest(wanted, compatible)
        if kept_too is None:
            dropped.append(Dropped(spec, "clash", None))
            continue
        before = tuple(NOUNS[k] for k in steps if k in found.picked and weights[k] >= weights[spec.key])
        dropped.append(Dropped(spec, "budget", kept_too.cost, before))
    complete = None
    if any(d.why == "budget" for d in dropped):
        every = cheapest([s for s in steps.values() if s.options], compatible)
        complete = None if every is None else every.cost
    products = {key: option.item for key, option in found.picked.items()}
    return Chosen(products, dropped, complete)


def schedule(kb: KnowledgeBase, specs: tuple[StepSpec, ...], chosen: dict[str, Candidate]) -> Schedule:
    """Put each chosen product in its slot(s) and separate clashing treatments."""
    placed: list[Placed] = []
    notes: list[tuple[str, InteractionRule | None]] = []
    for spec in specs:
        if spec.key in chosen and spec.slots:
            placed.append(
                Placed(spec, chosen[spec.key].product, spec.slots, dict.fromkeys(spec.slots, "daily"))
            )
    treatments = [(s, chosen[s.key].product) for s in specs if s.key in chosen and not s.slots]
    slots_of: list[str] = []
    for _spec, product in treatments:
        own = families(kb, product)
        preferred = "pm" if own & EVENING_FAMILIES else "am" if own & MORNING_FAMILIES else "pm"
        slots_of.append(preferred)
    if len(treatments) == 2:
        (spec_a, a), (spec_b, b) = treatments
        rules = clash_rules(kb, a, b)
        split = [r for r in rules if r.resolution == "split_am_pm"]
        alternate = [r for r in rules if r.resolution != "split_am_pm"]
        b_evening = bool(families(kb, b) & EVENING_FAMILIES)
        a_evening = bool(families(kb, a) & EVENING_FAMILIES)
        if split and not (a_evening and b_evening):
            slots_of = ["am", "pm"] if b_evening else ["pm", "am"]
            notes.append(
                (f"{a.name} and {b.name} are used at different times of day: {split[0].advice}", split[0])
            )
        elif rules:
            rule = (alternate or split)[0]
            slots_of = ["pm", "pm"]
            placed.append(Placed(spec_a, a, ("pm",), {"pm": "alternate nights (A)"}))
            placed.append(Placed(spec_b, b, ("pm",), {"pm": "alternate nights (B)"}))
            notes.append((f"{a.name} and {b.name} go on alternate nights: {rule.advice}", rule))
            treatments = []
        elif slots_of == ["pm", "pm"] and not (a_evening and b_evening):
            # spread the actives over the day: the one nothing keeps at night goes to the morning
            slots_of[1 if not b_evening else 0] = "am"
    for (spec, product), slot in zip(treatments, slots_of, strict=False):
        when = "2-3 evenings a week to start" if product.category == "exfoliant" else "daily"
        placed.append(Placed(spec, product, (slot,), {slot: when}))
    placed.sort(key=lambda p: ORDER[p.spec.key])
    return Schedule(steps=placed, notes=notes)


# Planning a person's routine: candidates per step from the recommender, the choice, the schedule, the advice.

CANDIDATES_PER_STEP = 8
TREATMENT_CANDIDATES = 12  # deeper: a second treatment must bring a different active
PROFILES_KEPT = 50_000  # products whose actives a routine remembers at once
ROUTINE_WARNINGS = (
    "Introduce one new product at a time, about two weeks apart, so you know what suits you.",
    "Patch test each new product on a small area (inside the forearm or behind the ear) for a few days first.",
    "Sunscreen every morning, reapplied when you are outdoors: it matters most when you use exfoliating acids or retinoids.",
)


class RoutineImpossible(ValueError):
    """No routine can be made within the person's limits; the message says what they can change."""


@dataclass
class Plan:
    choice: Chosen
    schedule: Schedule
    similar: dict[str, float]  # product id → what similar people's liking added to its score


def candidate_groups(specs: tuple[StepSpec, ...]) -> dict[tuple[str, ...], int]:
    """How many ranked products to read for each step's categories."""
    return {spec.categories: CANDIDATES_PER_STEP if spec.slots else TREATMENT_CANDIDATES for spec in specs}


def candidates_by_step(
    kb: KnowledgeBase, specs: tuple[StepSpec, ...], by_group: Mapping[tuple[str, ...], list[Picked]]
) -> tuple[dict[str, list[Candidate]], dict[str, float]]:
    """Each step's candidates (a treatment whose own actives clash is never one), and each product's
    similar-people weight."""
    candidates: dict[str, list[Candidate]] = {}
    similar_of: dict[str, float] = {}
    for spec in specs:
        found = []
        for product, score, similar in by_group[spec.categories]:
            if not spec.slots and firm_clash_inside(kb, product):
                continue
            found.append(Candidate(product, score))
            similar_of[product.id] = similar
        candidates[spec.key] = found
    return candidates, similar_of


def _sunscreen_costs(needed_minor: int, currency: str) -> str:
    return (
        f"the cheapest sunscreen that fits your limits costs {format_money(needed_minor, currency)}; "
        "a routine starts with sunscreen every morning, so raise the budget to at least that"
    )


def no_sunscreen(prepared: Prepared, budget_minor: int | None, currency: str) -> RoutineImpossible:
    """Why no sunscreen is a candidate: the budget (and what the cheapest fitting one costs) or the limits."""
    index = prepared.index
    sunscreens = hard_mask(
        index,
        prepared.needs,
        prepared.excluded,
        categories=["sunscreen"],
        currency=currency,
        max_price_minor=None,
    )
    if budget_minor is not None and sunscreens.any():
        return RoutineImpossible(_sunscreen_costs(int(index.price[sunscreens].min()), currency))
    return RoutineImpossible(
        "no sunscreen in the catalog fits your limits (avoided ingredients, preferences, pregnancy); "
        "a routine needs one every morning: loosen a limit with update_profile"
    )


def plan_routine(
    kb: KnowledgeBase,
    specs: tuple[StepSpec, ...],
    prepared: Prepared,
    by_group: Mapping[tuple[str, ...], list[Picked]],
    profiles: dict[tuple[str, tuple[str, ...]], Profile],
) -> Plan:
    """The routine for the person `prepared` ranks for, from the products picked per step group.

    Raises RoutineImpossible when no sunscreen fits. `profiles`: the per-server cache of `Compatibility`."""
    needs = prepared.needs
    currency = needs.currency or "USD"
    candidates, similar = candidates_by_step(kb, specs, by_group)
    if not candidates.get("protect"):
        raise no_sunscreen(prepared, needs.budget_minor, currency)
    if len(profiles) > PROFILES_KEPT:
        profiles.clear()
    concerns = {c.concern for c in needs.concerns}
    try:
        choice = choose(kb, specs, candidates, needs.budget_minor, concerns, profiles)
    except BudgetTooSmall as exc:
        raise RoutineImpossible(_sunscreen_costs(exc.needed_minor, currency)) from None
    if "protect" not in choice.products:
        raise RoutineImpossible(
            "could not find a sunscreen that goes with the rest of the routine; "
            "use recommend_products and check_ingredients to choose one"
        )
    return Plan(choice, schedule(kb, specs, choice.products), similar)


def routine_warnings(kb: KnowledgeBase, specs: tuple[StepSpec, ...], plan: Plan, pregnant: bool) -> list[str]:
    """How to start safely, and what the budget left out that matters most."""
    warnings = list(ROUTINE_WARNINGS)
    chosen = plan.choice.products
    essentials_dropped = [s.categories[0] for s in specs if s.essential and s.key not in chosen]
    if essentials_dropped:
        warnings.insert(
            0,
            f"The budget does not stretch to a {' and a '.join(essentials_dropped)}: add "
            f"{'them' if len(essentials_dropped) > 1 else 'it'} when you can (a basic one costs little), "
            "before anything else.",
        )
    distinct = {p.product.id: p.product for p in plan.schedule.steps}
    if any(cautions(kb, p) for p in distinct.values()):
        warnings.append("Some products here can make skin more sun-sensitive or irritated: see each step.")
    if pregnant:
        warnings.append(
            "Nothing here contains a retinoid; still show your routine to your doctor or midwife."
        )
    return warnings
