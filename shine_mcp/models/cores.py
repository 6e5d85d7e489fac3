"""The cores this process's analyses keep busy: the search for a second person gets a thread of its own only
while a core would otherwise sit idle.

On an idle two-core server that thread takes ~10 ms off an analysis (issue 16). On a busy one, where every
core already runs an analysis (the tool's limiter admits one per core), the extra thread only competes with
them: measured with two analyses at once, 4–5 % fewer analyses a second and a slower 95th percentile. So
each stage of an analysis counts itself busy while it runs, and the search runs on the analysing thread when
no core is free.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cores:
    """A count of threads analysing now, against `count` cores. A stage that calls another counts once."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._in_use = 0
        self._lock = threading.Lock()
        self._held = threading.local()

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def busy(self) -> Iterator[None]:
        """This thread analyses for the duration (whether or not a core was free: its work is not optional)."""
        if getattr(self._held, "core", False):
            yield
            return
        with self._lock:
            self._in_use += 1
        self._held.core = True
        try:
            yield
        finally:
            self._held.core = False
            with self._lock:
                self._in_use -= 1

    def take_spare(self) -> bool:
        """Take a core for optional work if one is free; `give_back` it when that work ends."""
        with self._lock:
            if self._in_use >= self.count:
                return False
            self._in_use += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._in_use -= 1


ANALYSIS = Cores(os.cpu_count() or 1)  # as many as the tool admits analyses at once (`Services`)
