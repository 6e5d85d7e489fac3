"""A counter of writes in this process, for caches built from the database to know they are stale."""

from __future__ import annotations


class Generation:
    """Goes up with every write of one kind; a cache remembers the value it was built at."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1
