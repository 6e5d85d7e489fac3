"""Choosing one option per step (or none) under a budget, exactly: a multiple-choice knapsack with
optional pairwise compatibility. Knows prices in minor units and integer values, not skincare.

Branch and bound over the steps, in the order given. Each pick closes the options of later steps that
cannot go with it; the bound for the steps left is the exact knapsack over their open options (a dynamic
programme over every amount of money up to the budget), which ignores only the compatibility among
those steps themselves: when nothing clashes the first descent is the optimum and everything else is cut.
Values are integers so that "better" never depends on float rounding; ties keep the first found, and the
search order (bound, then price, then the caller's order) makes that deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")
_OWN = object()  # the kind of an option that names none: its own
# Far below any reachable total, and far enough above int64's floor that adding values cannot wrap: a
# sum that starts here stays below _UNREACHABLE // 2 while the values stay below 2**60 in magnitude.
_UNREACHABLE = -(2**62)


@dataclass(frozen=True)
class Option(Generic[T]):
    item: T
    price: int  # minor units, >= 0
    value: int
    # Options of one step with the same kind go with exactly the same things: compatibility is asked once
    # per kind (None: a kind of its own).
    kind: Hashable = None


@dataclass(frozen=True)
class Step(Generic[T]):
    key: str
    options: Sequence[Option[T]]
    required: bool = False  # a choice without this step does not count


@dataclass(frozen=True)
class Choice(Generic[T]):
    picked: dict[str, Option[T]]  # step key → option, for the steps kept
    value: int
    cost: int


# (step key, candidate item, items already picked for other steps) → may it join them? It must be
# pairwise: an item fits a set exactly when it fits alone ({}) and beside each member of the set.
Compatible = Callable[[str, T, Mapping[str, T]], bool]


def optimise(
    steps: Sequence[Step[T]], budget: int | None, compatible: Compatible[T] | None = None
) -> Choice[T] | None:
    """The choice of at most one option per step with the greatest total value whose total price is
    within `budget` (None: no limit), every required step kept and every pick compatible with the
    others; None when the required steps cannot be met."""
    if budget is not None and budget < 0:
        return None
    open_steps = [_affordable(step, budget) for step in steps]
    if any(step.required and not step.options for step in open_steps):
        return None
    return _Search(open_steps, budget, compatible).run()


def cheapest(steps: Sequence[Step[T]], compatible: Compatible[T] | None = None) -> Choice[T] | None:
    """The cheapest choice that keeps every step (its value is minus its cost); None when the steps'
    options cannot all go together."""
    every = [
        Step(step.key, [Option(o.item, o.price, -o.price) for o in step.options], required=True)
        for step in steps
    ]
    return optimise(every, None, compatible)


def _affordable(step: Step[T], budget: int | None) -> Step[T]:
    if budget is None:
        return step
    return Step(step.key, [o for o in step.options if o.price <= budget], step.required)


class _Search(Generic[T]):
    """Depth-first over the steps. Which options are still open is a bit mask per step, narrowed by each
    pick through the pairwise compatibility (asked once per kind). A node is cut when the knapsack over
    the open options of the steps left, within the money left, cannot beat the best choice found."""

    def __init__(self, steps: Sequence[Step[T]], budget: int | None, compatible: Compatible[T] | None):
        self.steps, self.budget, self.compatible = steps, budget, compatible
        self.bound = _Bound(steps, budget)
        self.narrowed: dict[tuple[int, Hashable], tuple[int, ...]] = {}
        # per step: (one item of a kind, the options of that kind as a bit mask)
        self.kinds: list[list[tuple[T, int]]] = []
        for step in steps:
            found: dict[Hashable, tuple[T, int]] = {}
            for number, option in enumerate(step.options):
                kind = (_OWN, number) if option.kind is None else option.kind
                item, mask = found.get(kind, (option.item, 0))
                found[kind] = (item, mask | 1 << number)
            self.kinds.append(list(found.values()))
        self.best: Choice[T] | None = None
        self.picked: dict[str, Option[T]] = {}

    def run(self) -> Choice[T] | None:
        masks = tuple(self.fitting(at, {}) for at in range(len(self.steps)))
        self.search(0, 0, 0, masks)
        return self.best

    def search(self, at: int, spent: int, value: int, masks: tuple[int, ...]) -> None:
        """`masks`: the open options of steps `at`, `at + 1`…"""
        if at == len(self.steps):
            if self.best is None or value > self.best.value:
                self.best = Choice(dict(self.picked), value, spent)
            return
        left = None if self.budget is None else self.budget - spent
        here = self.bound.best(at, masks, left)
        if here is None or (self.best is not None and value + here <= self.best.value):
            return
        step, mask, later = self.steps[at], masks[0], masks[1:]
        # Ordered by the looser bound of this node's open options: narrowing is asked only on the way in.
        after, cap = self.bound.table(at + 1, later), self.bound.cap
        tries: list[tuple[int, int, int]] = []
        for number, option in enumerate(step.options):
            if not mask >> number & 1 or (left is not None and option.price > left):
                continue
            rest = after.item(0 if left is None else min(left - option.price, cap))
            if rest > _UNREACHABLE // 2:
                tries.append((-(value + option.value + rest), option.price, number))
        if not step.required:
            rest = after.item(0 if left is None else min(left, cap))
            if rest > _UNREACHABLE // 2:
                tries.append((-(value + rest), 0, -1))
        tries.sort()
        for negative_bound, _, number in tries:
            if self.best is not None and -negative_bound <= self.best.value:
                return  # sorted: nothing after this can do better either
            if number < 0:
                self.search(at + 1, spent, value, later)
                continue
            option = step.options[number]
            child = tuple(m & n for m, n in zip(later, self.narrow(at, number), strict=True))
            self.picked[step.key] = option
            self.search(at + 1, spent + option.price, value + option.value, child)
            del self.picked[step.key]

    def narrow(self, at: int, number: int) -> tuple[int, ...]:
        """The options of each later step that may sit beside option `number` of step `at`."""
        option = self.steps[at].options[number]
        key = (at, (_OWN, number) if option.kind is None else option.kind)
        found = self.narrowed.get(key)
        if found is None:
            beside = {self.steps[at].key: option.item}
            found = self.narrowed[key] = tuple(
                self.fitting(j, beside) for j in range(at + 1, len(self.steps))
            )
        return found

    def fitting(self, at: int, beside: Mapping[str, T]) -> int:
        """The options of step `at` that may join `beside`, as a bit mask."""
        key, mask = self.steps[at].key, 0
        for item, of_kind in self.kinds[at]:
            if self.compatible is None or self.compatible(key, item, beside):
                mask |= of_kind
        return mask


class _Bound:
    """The best value the steps from `at` on can add from their open options with `money` to spend,
    compatibility among them ignored: a knapsack over every amount of money up to the budget (or up to
    what the dearest option of every step costs together, past which more money changes nothing),
    one table per set of open options, built from the next step's. Without a budget, one amount."""

    def __init__(self, steps: Sequence[Step[T]], budget: int | None) -> None:
        self.steps, self.priced = steps, budget is not None
        dearest = sum(max((o.price for o in s.options), default=0) for s in steps)
        self.cap = 0 if budget is None else min(budget, dearest)
        self.end = np.zeros(self.cap + 1, np.int64)  # past the last step, any money adds nothing
        self.tables: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self.scratch = np.empty(self.cap + 1, np.int64)

    def best(self, at: int, masks: tuple[int, ...], money: int | None) -> int | None:
        """None when the steps from `at` on cannot be met with `money`."""
        found = self.table(at, masks).item(0 if money is None else min(money, self.cap))
        return None if found <= _UNREACHABLE // 2 else int(found)

    def table(self, at: int, masks: tuple[int, ...]) -> np.ndarray:
        if at == len(self.steps):
            return self.end
        found = self.tables.get((at, masks))
        if found is not None:
            return found
        after, step, cap = self.table(at + 1, masks[1:]), self.steps[at], self.cap
        row = np.full(cap + 1, _UNREACHABLE, np.int64) if step.required else after.copy()
        # Only options no cheaper open option matches in value can raise the table.
        priced = sorted(
            (
                (o.price if self.priced else 0, -o.value)
                for n, o in enumerate(step.options)
                if masks[0] >> n & 1
            )
        )
        ceiling = 0 if not step.required else _UNREACHABLE
        for price, negative in priced:
            if price > cap or -negative <= ceiling:
                continue
            ceiling = -negative
            shifted = np.add(after[: cap + 1 - price], ceiling, out=self.scratch[: cap + 1 - price])
            np.maximum(row[price:], shifted, out=row[price:])
        self.tables[(at, masks)] = row
        return row
