"""Assembling a morning and evening routine from ranked candidates per step.

Rules, in the order they win:
1. every morning ends with sunscreen; cleanser and moisturiser are the other essentials, dropped (and
   said so) only when the budget cannot cover them after every optional step is gone;
2. one product per step; cleanser, toner, eye care and moisturiser serve both mornings and evenings;
3. the total of the distinct products stays within the budget (cheapest fit first, then each step, most
   important first, upgraded to the best product the money left allows);
4. no two actives that clash share a slot: a shared product never clashes with a treatment, and two
   treatments that clash are split morning/evening or put on alternate nights, as the rule says;
5. sun-sensitising actives (retinoids, AHAs, BHAs) go in the evening, vitamin C in the morning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shine_mcp.knowledge import InteractionRule, KnowledgeBase
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


class Compatibility:
    """Which chosen products may share a routine, memoised: routines try many combinations of the same few
    dozen candidates, and only ingredients named by an interaction rule can make two products clash."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._actives: dict[str, list[str]] = {}
        self._families: dict[str, frozenset[str]] = {}
        self._pairs: dict[frozenset[str], bool] = {}

    def actives(self, candidate: Candidate) -> list[str]:
        found = self._actives.get(candidate.id)
        if found is None:
            found = self._actives[candidate.id] = self.kb.interacting(candidate.ingredients)
        return found

    def active_families(self, candidate: Candidate) -> frozenset[str]:
        found = self._families.get(candidate.id)
        if found is None:
            kinds = {f for name in candidate.ingredients if (f := self.kb.family_of(name))}
            found = self._families[candidate.id] = frozenset(kinds & ACTIVE_FAMILIES)
        return found

    def clash(self, a: Candidate, b: Candidate) -> bool:
        key = frozenset((a.id, b.id))
        found = self._pairs.get(key)
        if found is None:
            left, right = self.actives(a), self.actives(b)
            found = self._pairs[key] = bool(left and right and self.kb.clashes(left, right))
        return found

    def fits(self, spec: StepSpec, candidate: Candidate, chosen: dict[str, Candidate]) -> bool:
        """A shared product (cleanser, moisturiser…) must not clash with anything; treatments may clash
        with each other (the schedule separates them) but not with a shared product. No two products bring
        the same active family, and a product used mornings too holds no retinoid."""
        mine = self.active_families(candidate)
        if spec.slots and "am" in spec.slots and mine & NIGHT_ONLY:
            return False
        for other_key, other in chosen.items():
            if other.id == candidate.id or mine & self.active_families(other):
                return False
            other_shared = not other_key.startswith("treat")
            if (spec.slots or other_shared) and self.clash(candidate, other):
                return False
        return True


TREATMENT_OPTIONS = 3  # the best few treatments per treatment step are tried in combination
TREATMENT_WEIGHT = 1.5  # treatments carry the concerns: they count for more in a routine's score
MISSING_PENALTY = 10.0
UPGRADE_PASSES = 3


def choose(
    kb: KnowledgeBase,
    specs: tuple[StepSpec, ...],
    candidates: dict[str, list[Candidate]],
    budget_minor: int | None,
) -> tuple[dict[str, Candidate], list[str]]:
    """One product per step within budget, compatible with each other; and the steps dropped.

    Tries the best few treatments (and none) in every combination, fills the shared steps around each
    with the cheapest compatible products, upgrades them while the budget allows, and keeps the plan
    with the best total score. When no plan fits the budget, steps are dropped lowest priority first;
    sunscreen never is."""
    compat = Compatibility(kb)
    active = sorted((s for s in specs if candidates.get(s.key)), key=lambda s: s.priority)
    dropped: list[str] = []
    while True:
        plan = _best_plan(compat, active, candidates, budget_minor)
        if plan is not None:
            break
        droppable = [s for s in active if s.key != "protect"]
        if not droppable:
            cheapest = min(c.price for c in candidates.get("protect", []) or [])
            raise BudgetTooSmall(cheapest)
        last = droppable[-1]
        dropped.append(_label(last))
        active = [s for s in active if s is not last]
    dropped += [_label(s) for s in active if s.key not in plan]
    return plan, dropped


def _label(spec: StepSpec) -> str:
    return "Second treatment" if spec.key == "treat_2" else spec.label


def _best_plan(
    compat: Compatibility,
    specs: list[StepSpec],
    candidates: dict[str, list[Candidate]],
    budget_minor: int | None,
) -> dict[str, Candidate] | None:
    treatments = [s for s in specs if not s.slots]
    shared = [s for s in specs if s.slots]
    best_plan: tuple[float, tuple[str, ...], dict[str, Candidate]] | None = None
    for option in _treatment_options(compat, treatments, candidates):
        chosen = dict(option)
        for spec in shared:
            for candidate in sorted(candidates[spec.key], key=lambda c: (c.price, -c.score, c.id)):
                if compat.fits(spec, candidate, chosen):
                    chosen[spec.key] = candidate
                    break
        if budget_minor is not None and _cost(chosen) > budget_minor:
            continue
        _upgrade(compat, shared, candidates, chosen, budget_minor)
        total = sum(c.score * (TREATMENT_WEIGHT if k.startswith("treat") else 1.0) for k, c in chosen.items())
        total -= MISSING_PENALTY * sum(1 for s in shared if s.key not in chosen)
        ids = tuple(sorted(c.id for c in chosen.values()))
        if best_plan is None or (total, ids) > (best_plan[0], best_plan[1]):
            best_plan = (total, ids, chosen)
    return None if best_plan is None else best_plan[2]


def _treatment_options(
    compat: Compatibility, treatments: list[StepSpec], candidates: dict[str, list[Candidate]]
) -> list[list[tuple[str, Candidate]]]:
    """Each treatment step adds, to every option so far, nothing or one of the best few candidates that
    bring an active family not already there (a second treatment complements the first)."""
    options: list[list[tuple[str, Candidate]]] = [[]]
    for spec in treatments:
        grown = []
        for option in options:
            grown.append(option)  # without this treatment
            used = {c.id for _, c in option}
            taken = set().union(*(compat.active_families(c) for _, c in option))
            fitting = [
                c for c in candidates[spec.key] if c.id not in used and not compat.active_families(c) & taken
            ]
            grown += [[*option, (spec.key, c)] for c in fitting[:TREATMENT_OPTIONS]]
        options = grown
    unique: dict[frozenset[str], list[tuple[str, Candidate]]] = {}
    for option in options:  # (A then B) and (B then A) are one plan
        unique.setdefault(frozenset(c.id for _, c in option), option)
    return list(unique.values())


def _cost(chosen: dict[str, Candidate]) -> int:
    return sum(c.price for c in chosen.values())


def _upgrade(
    compat: Compatibility,
    specs: list[StepSpec],
    candidates: dict[str, list[Candidate]],
    chosen: dict[str, Candidate],
    budget_minor: int | None,
) -> None:
    """Swap in better products while the budget allows, the most important step first (sunscreen, then
    moisturiser, cleanser…): each step takes the best product the money left over allows. A few passes,
    since a change can make room (or a clash) for another step."""
    for _ in range(UPGRADE_PASSES):
        changed = False
        for spec in specs:
            current = chosen.get(spec.key)
            if current is None:
                continue
            others = {k: v for k, v in chosen.items() if k != spec.key}
            spare = None if budget_minor is None else budget_minor - _cost(others)
            for candidate in sorted(candidates[spec.key], key=lambda c: (-c.score, c.price, c.id)):
                if candidate.score <= current.score + 1e-9:
                    break
                if spare is not None and candidate.price > spare:
                    continue
                if compat.fits(spec, candidate, others):
                    chosen[spec.key], changed = candidate, True
                    break
        if not changed:
            return


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
