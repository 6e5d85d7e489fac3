"""Outcomes a running Shine reports to whoever counts them (the web shell's Prometheus metrics): skin
analyses and their photo checks, the Firecrawl circuit breaker's state, the database once it is open.

Nothing here counts or exports anything; with no one listening (the CLI, `shine mcp`), telling costs a loop
over an empty list. Listeners are plain callables and must not raise or block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from shine_mcp.store.db import Database

BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class Observers:
    """One per `Services`: lists of listeners, appended to by whoever wants to know."""

    # (outcome, failed photo checks): "reported" with the checks that failed, or the rejection code.
    analysis: list[Callable[[str, list[str]], None]] = field(default_factory=list)
    breaker: list[Callable[[BreakerState], None]] = field(default_factory=list)
    database: list[Callable[[Database], None]] = field(default_factory=list)

    def analysed(self, failed_gates: Iterable[str]) -> None:
        failed = list(failed_gates)
        for listener in self.analysis:
            listener("reported", failed)

    def rejected(self, code: str) -> None:
        for listener in self.analysis:
            listener(code, [])

    def breaker_changed(self, state: BreakerState) -> None:
        for listener in self.breaker:
            listener(state)

    def database_opened(self, db: Database) -> None:
        for listener in self.database:
            listener(db)
