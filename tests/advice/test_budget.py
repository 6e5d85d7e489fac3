"""The exact routine optimiser (`shine_mcp.advice.budget`) against a brute-force search over every choice,
and the step values the routine gives it: what a shopper keeps when the money is short."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

from shine_mcp.advice.budget import Choice, Compatible, Option, Step, cheapest, optimise
from shine_mcp.advice.routine import COMPLETE, MAX_FIT_UNITS, MINIMAL, step_weights

Item = tuple[str, int, int]  # (step key, number, kind): what the random catalogs offer


def _random_case(
    rng: random.Random, *, values: Mapping[str, int] | None = None
) -> tuple[list[Step[Item]], int | None, Compatible[Item]]:
    """Steps of up to five options; what clashes is drawn per pair of kinds (options of a step that share
    a kind say so, or not, to the optimiser), and some kinds cannot be used at all."""
    keys = list(values) if values else [f"s{n}" for n in range(rng.randint(1, 5))]
    steps = []
    for number, key in enumerate(keys):
        options = []
        for n in range(rng.randint(0, 4 if len(keys) > 4 else 5)):
            kind = rng.randint(0, 2)
            options.append(
                Option(
                    (key, n, kind),
                    rng.choice([0, rng.randint(50, 900), rng.randint(100, 5000)]),
                    (values[key] if values else 0) + rng.randint(-20, 400),
                    kind=(kind if rng.random() < 0.7 else None),
                )
            )
        steps.append(Step(key, options, required=number == 0 and rng.random() < 0.5))
    total = sum(o.price for s in steps for o in s.options)
    budget = None if rng.random() < 0.15 else rng.randint(0, max(total, 1))
    kinds = [(key, kind) for key in keys for kind in range(3)]
    clashing = {frozenset((a, b)) for a, b in itertools.combinations(kinds, 2) if rng.random() < 0.2}
    unusable = {k for k in kinds if rng.random() < 0.05}

    def compatible(key: str, item: Item, chosen: Mapping[str, Item]) -> bool:
        mine = (key, item[2])
        return mine not in unusable and all(
            frozenset((mine, (other[0], other[2]))) not in clashing for other in chosen.values()
        )

    return steps, budget, compatible


def _every_choice(
    steps: list[Step[Item]], budget: int | None, compatible: Compatible[Item]
) -> list[dict[str, Option[Item]]]:
    """Every allowed choice, found by trying them all."""
    found = []
    for combination in itertools.product(*[[None, *s.options] for s in steps]):
        picked = {s.key: o for s, o in zip(steps, combination, strict=True) if o is not None}
        if any(s.required and s.key not in picked for s in steps):
            continue
        if budget is not None and sum(o.price for o in picked.values()) > budget:
            continue
        ok, items = True, dict[str, Item]()
        for key, option in picked.items():  # in step order, as the optimiser adds them
            if not compatible(key, option.item, items):
                ok = False
                break
            items[key] = option.item
        if ok:
            found.append(picked)
    return found


def _is_valid(choice: Choice[Item], steps: list[Step[Item]], budget: int | None) -> bool:
    keys = [s.key for s in steps]
    return (
        all(choice.picked[k] in s.options for s in steps if (k := s.key) in choice.picked)
        and set(choice.picked) <= set(keys)
        and choice.cost == sum(o.price for o in choice.picked.values())
        and choice.value == sum(o.value for o in choice.picked.values())
        and (budget is None or choice.cost <= budget)
    )


def test_the_optimiser_finds_the_best_value_a_brute_force_search_finds() -> None:
    rng = random.Random(17)
    for case in range(500):
        steps, budget, compatible = _random_case(rng)
        allowed = _every_choice(steps, budget, compatible)
        choice = optimise(steps, budget, compatible)
        if not allowed:
            assert choice is None, case
            continue
        assert choice is not None and _is_valid(choice, steps, budget), case
        assert choice.value == max(sum(o.value for o in p.values()) for p in allowed), case
        assert choice.picked in allowed, case


def test_the_cheapest_complete_choice_is_the_cheapest_a_brute_force_search_finds() -> None:
    rng = random.Random(18)
    for case in range(500):
        steps, _, compatible = _random_case(rng)
        complete = [p for p in _every_choice(steps, None, compatible) if len(p) == len(steps)]
        found = cheapest(steps, compatible)
        if not complete:
            assert found is None, case
            continue
        assert found is not None and len(found.picked) == len(steps), case
        assert found.cost == min(sum(o.price for o in p.values()) for p in complete), case


def test_no_step_is_dropped_that_a_cheaper_choice_would_keep() -> None:
    rng = random.Random(19)
    weights = step_weights(COMPLETE, {"acne"})
    for case in range(200):
        steps, budget, compatible = _random_case(rng, values=weights)
        allowed = _every_choice(steps, budget, compatible)
        choice = optimise(steps, budget, compatible)
        if choice is None:
            assert not allowed
            continue
        for dropped in (s.key for s in steps if s.key not in choice.picked):
            wanted = {*choice.picked, dropped}
            assert not [p for p in allowed if wanted <= set(p)], (case, dropped)


def test_a_treatment_for_the_concern_outranks_cleanser_and_moisturiser_together() -> None:
    weights = step_weights(MINIMAL, {"acne"})
    assert weights["treat"] == weights["protect"]
    assert weights["treat"] > weights["moisturise"] + weights["cleanse"] + 10 * MAX_FIT_UNITS
    assert weights["moisturise"] > weights["cleanse"]
    # Without a concern a treatment has nothing to treat: the essentials come first.
    plain = step_weights(MINIMAL, set())
    assert plain["cleanse"] > plain["treat"]
    # Eye care is the treatment for dark circles.
    eyes = step_weights(COMPLETE, {"dark_circles"})
    assert eyes["eye"] == eyes["protect"] > eyes["moisturise"] > eyes["tone"]


def test_a_budget_below_every_required_option_has_no_choice() -> None:
    steps = [Step("protect", [Option("spf", 1200, 5)], required=True), Step("treat", [Option("bha", 500, 9)])]
    assert optimise(steps, 1100) is None
    found = optimise(steps, 1200)
    assert found is not None and set(found.picked) == {"protect"}
    assert cheapest(steps) == Choice(
        {"protect": Option("spf", 1200, -1200), "treat": Option("bha", 500, -500)}, -1700, 1700
    )
