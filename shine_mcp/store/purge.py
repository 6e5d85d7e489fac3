"""Deleting what has expired, on a schedule: chat uploads past their time, idle chats, web cache entries,
OAuth requests, codes and tokens, web sessions, widget sign-in codes and tokens, rate-limit buckets
nobody uses any more and MCP stream events past their retention. Clicks outlive the chats they came from
(the shop's counts), without the id of a chat that is gone.

`purge_expired(db, now)` does one pass and says how many rows of each kind went; `PurgeJob` runs it every
`SHINE_PURGE_SECONDS` in the web shell (`shine serve`), and `shine purge` runs it once (for a cron job
when the interval is 0). Reads never return expired rows anyway; this is what makes them leave the disk.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import delete
from sqlalchemy.engine import Connection

from shine_mcp.clock import utcnow
from shine_mcp.store.chat import CHAT_IDLE_DAYS, ChatSession, ChatUpload
from shine_mcp.store.clicks import unlink_purged_chats_statement
from shine_mcp.store.db import Database, lift_time_limits
from shine_mcp.store.stream_events import purge_statement as stream_events_purge
from shine_mcp.store.users import (
    OAuthCode,
    OAuthRequest,
    OAuthToken,
    RateLimitBucket,
    WebSession,
    WidgetCode,
    WidgetToken,
)
from shine_mcp.store.web_cache import WebCacheEntry

log = logging.getLogger("shine.purge")

# Codes, tokens and sessions stay a day past their expiry, as `auth.tokens.sweep` keeps them: a late replay
# of a used code or a rotated refresh token is still recognised as reuse (and revokes its family).
GRACE = timedelta(days=1)
# The rate limiter counts per minute and reads the previous minute too (`auth.ratelimit`): a bucket whose
# window began more than two minutes ago no longer counts for anything.
STALE_BUCKET_SECONDS = 2 * 60


def _table(model: Any) -> Any:
    return model.__table__


def _statements(now: datetime) -> dict[str, Any]:
    uploads, chats, cache = _table(ChatUpload), _table(ChatSession), _table(WebCacheEntry)
    requests, codes, tokens = _table(OAuthRequest), _table(OAuthCode), _table(OAuthToken)
    sessions, buckets = _table(WebSession), _table(RateLimitBucket)
    widget_codes, widget_tokens = _table(WidgetCode), _table(WidgetToken)
    return {
        "uploads": delete(uploads).where(uploads.c.expires_at.is_not(None), uploads.c.expires_at <= now),
        "idle_chats": delete(chats).where(chats.c.updated_at < now - timedelta(days=CHAT_IDLE_DAYS)),
        "clicks_unlinked_from_chats": unlink_purged_chats_statement(),  # after idle_chats: the dict's order
        "web_cache": delete(cache).where(cache.c.expires_at <= now),
        "oauth_requests": delete(requests).where(requests.c.expires_at < now),
        "oauth_codes": delete(codes).where(codes.c.expires_at < now - GRACE),
        "oauth_tokens": delete(tokens).where(tokens.c.expires_at < now - GRACE),
        "web_sessions": delete(sessions).where(sessions.c.expires_at < now - GRACE),
        "widget_codes": delete(widget_codes).where(widget_codes.c.expires_at < now - GRACE),
        "widget_tokens": delete(widget_tokens).where(widget_tokens.c.expires_at < now - GRACE),
        "rate_limit_buckets": delete(buckets).where(
            buckets.c.window_start < int(now.timestamp()) - STALE_BUCKET_SECONDS
        ),
        "mcp_stream_events": stream_events_purge(now),
    }


async def purge_expired(db: Database, now: datetime) -> dict[str, int]:
    """Delete every expired row; the number deleted per kind. Each kind is its own short unit of work, so
    a large purge never holds the write lock for long in one piece."""
    counts: dict[str, int] = {}
    for kind, statement in _statements(now).items():

        def work(connection: Connection, statement: Any = statement) -> int:
            lift_time_limits(connection)  # months of expired rows may take longer than a request may
            deleted = int(connection.execute(statement).rowcount or 0)
            connection.commit()
            return deleted

        counts[kind] = await db.write(work)
    return counts


class PurgeJob:
    """`purge_expired` every `every_seconds` while `running()` (0: never), starting at once. A pass that
    fails is logged and the next one tries again; `wait_for_passes` lets tests follow it without sleeping."""

    def __init__(self, db: Database, every_seconds: float, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db, self.every, self._clock = db, every_seconds, clock
        self.passes = 0
        self.last: dict[str, int] = {}
        self._passed = anyio.Event()

    async def purge_once(self) -> dict[str, int]:
        try:
            self.last = await purge_expired(self._db, self._clock())
        except Exception:
            log.exception("purging expired rows failed; trying again in %s s", self.every)
        else:
            if any(self.last.values()):
                log.info("purged expired rows: %s", {k: v for k, v in self.last.items() if v})
        finally:
            self.passes += 1
            passed, self._passed = self._passed, anyio.Event()
            passed.set()
        return self.last

    async def wait_for_passes(self, count: int) -> None:
        """Return once `count` passes have run since the job was made (bound it with `anyio.fail_after`)."""
        while self.passes < count:
            await self._passed.wait()

    async def _loop(self) -> None:
        while True:
            await self.purge_once()
            await anyio.sleep(self.every)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PurgeJob]:
        if self.every <= 0:
            yield self
            return
        async with anyio.create_task_group() as group:
            group.start_soon(self._loop)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()
