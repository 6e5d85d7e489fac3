"""Browsing for a running Shine: its one Firecrawl browser, made on first use and closed with the services,
and the cache of web answers in front of it (read from `store.web_cache`, written after the answer is sent).

The browse tools (`shine_mcp.tools.browse`) decide what may be asked and shape the answers; this module
only makes the calls and remembers their results."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shine_mcp.integrations.firecrawl import Browser, Progress, browser_from_settings
from shine_mcp.services import Services
from shine_mcp.store import web_cache as cache

log = logging.getLogger("shine.browse")


class LazyBrowser:
    """The one browser of a running Shine: made on first use, closed with the services."""

    def __init__(self, services: Services, given: Browser | None) -> None:
        self.services, self.given = services, given
        self.browser: Browser | None = None

    def get(self) -> Browser:
        if self.browser is None:
            observers = self.services.observers
            self.browser = self.given or browser_from_settings(
                self.services.settings, observers.breaker_changed
            )
            self.services.on_stop(self._close)
        return self.browser

    async def _close(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            await browser.aclose()


class WriteBehind:
    """Cache writes happen after the answer is sent: nobody waits for the database on a miss. Until a
    write has landed its payload answers from memory, so a repeat right away is still a hit; a failed
    write only costs the next caller a Firecrawl call. Pending writes finish before the database closes."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.pending: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.hooked = False

    def put(self, key: str, kind: str, payload: dict[str, Any], ttl: int) -> None:
        self.pending[key] = payload
        task = asyncio.get_running_loop().create_task(self._write(key, kind, payload, ttl))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if not self.hooked:
            self.services.on_stop(self.drain)
            self.hooked = True

    async def _write(self, key: str, kind: str, payload: dict[str, Any], ttl: int) -> None:
        try:
            await cache.put(self.services.db, key, kind, payload, ttl)
        except Exception:  # the answer was already given; the cache is an optimisation
            log.warning("could not cache a web result", exc_info=True)
        finally:
            self.pending.pop(key, None)

    async def drain(self) -> None:
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
        self.hooked = False


class Browsing:
    """Firecrawl calls and their cached answers, for the browse tools of one server. `given` is a seam: the
    benchmark passes a browser so it can also call Firecrawl on the same session."""

    def __init__(self, services: Services, given: Browser | None = None) -> None:
        self.services = services
        self.lazy = LazyBrowser(services, given)
        self.behind = WriteBehind(services)

    @property
    def configured(self) -> bool:
        return self.lazy.get().configured

    async def call(self, tool: str, arguments: dict[str, Any], progress: Progress) -> Any:
        """One Firecrawl tool call; raises `BrowseError` with words for the shopper."""
        return await self.lazy.get().call(tool, arguments, progress=progress)

    async def cached(self, kind: str, key_args: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """The cache key for these arguments and the answer kept under it, if any (none when caching is off)."""
        key = cache.cache_key(kind, key_args)
        if self.services.settings.browse_cache_seconds == 0:
            return key, None
        if key in self.behind.pending:
            return key, self.behind.pending[key]
        return key, await cache.get(self.services.db, key)

    async def remember(self, key: str, kind: str, payload: dict[str, Any]) -> None:
        seconds = self.services.settings.browse_cache_seconds
        if seconds:
            self.behind.put(key, kind, payload, seconds)
