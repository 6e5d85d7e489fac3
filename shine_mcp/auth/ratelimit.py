"""Rate limits shared by every Shine process through the database: a sliding-window counter per key.

Each hit is one `INSERT … ON CONFLICT DO UPDATE … RETURNING` (SQLite ≥ 3.35 and PostgreSQL), so two
processes counting the same key never lose an update. The estimate weighs the previous minute by how
much of it still overlaps the window, which avoids the double burst a fixed window allows at its edge.

Every request writes here, so a hit is one statement through `Database.write_one` (on SQLite: one hop to
the writer thread, which retries a locked database with jitter; on PostgreSQL: one round trip, autocommit). When it still cannot count, `hit` raises
`DatabaseBusy` and the web shell answers 503 with `Retry-After`: failing open would switch the limits off
exactly when a flood makes the database busy. Old buckets are removed by the purge job (`store.purge`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection

from shine_mcp.store.db import Database, DatabaseBusy

log = logging.getLogger("shine.auth")

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Limit:
    key: str  # e.g. "ip:203.0.113.5:mcp" or "user:usr_…:mcp"
    per_minute: int  # 0: unlimited


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds, when not allowed
    key: str | None = None  # the limit that was exceeded


class RateLimiter:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db, self._clock = db, clock

    async def hit(self, limits: Sequence[Limit]) -> Verdict:
        """Count one request against every limit; refuse it if any is over."""
        active = [limit for limit in limits if limit.per_minute > 0]
        if not active:
            return Verdict(True)
        now = self._clock().timestamp()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        elapsed = now - window
        statement = _upsert(len(active))
        params: dict[str, object] = {"w": window, "prev": window - WINDOW_SECONDS}
        params.update({f"k{i}": limit.key for i, limit in enumerate(active)})

        def counting(connection: Connection) -> dict[str, tuple[int, int]]:
            rows = connection.execute(statement, params).all()
            connection.commit()
            return {str(row[0]): (int(row[1]), int(row[2])) for row in rows}

        try:
            by_key = await self._db.write_one(counting)
        except DatabaseBusy:
            log.warning("rate limiter: the database stayed busy; this request gets 503")
            raise
        worst: Verdict = Verdict(True)
        for limit in active:
            count, previous = by_key[limit.key]
            weight = 1 - elapsed / WINDOW_SECONDS
            if count + previous * weight > limit.per_minute:
                wait = _seconds_until_under(limit.per_minute, count, previous, elapsed)
                if not worst.retry_after or wait > worst.retry_after:
                    worst = Verdict(False, wait, limit.key)
        return worst


@lru_cache(maxsize=4)
def _upsert(keys: int) -> TextClause:
    """The counting statement for `keys` keys. Plain SQL that SQLite (3.35+) and PostgreSQL both run; in
    `DO UPDATE`, every right-hand side reads the row as it was before this update."""
    values = ", ".join(f"(:k{i}, :w, 1, 0)" for i in range(keys))
    return text(
        f"""INSERT INTO rate_limit_buckets ("key", window_start, "count", prev_count) VALUES {values}
        ON CONFLICT ("key") DO UPDATE SET
            prev_count = CASE WHEN rate_limit_buckets.window_start = :w THEN rate_limit_buckets.prev_count
                              WHEN rate_limit_buckets.window_start = :prev THEN rate_limit_buckets."count"
                              ELSE 0 END,
            "count" = CASE WHEN rate_limit_buckets.window_start = :w THEN rate_limit_buckets."count" + 1
                           ELSE 1 END,
            window_start = :w
        RETURNING "key", "count", prev_count"""
    )


def _seconds_until_under(limit: int, count: int, previous: int, elapsed: float) -> int:
    """Seconds until one more request would pass, if the client stops now (denied hits count too)."""
    if count + 1 <= limit and previous > 0:
        # Later in this window: (count + 1) + previous * (1 - e/W) <= limit.
        needed = WINDOW_SECONDS * (1 - (limit - count - 1) / previous)
        if needed < WINDOW_SECONDS:
            return max(1, math.ceil(needed - elapsed))
    # In the next window, where this window's count becomes the previous one: 1 + count * (1 - t/W) <= limit.
    t = WINDOW_SECONDS * (1 - (limit - 1) / count) if count > 0 else 0.0
    return max(1, math.ceil(WINDOW_SECONDS - elapsed + max(0.0, t)))
