"""The long-lived things a running Shine needs (database, later the integrations), built once and shared.

`build_server` and the web shell receive a `Services`; whoever enters `running()` first opens them,
and the last one out closes them, so an in-process client, the HTTP app and the CLI share one engine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from shine_mcp.config import Settings
from shine_mcp.observers import Observers
from shine_mcp.store.catalog import ensure_demo_catalog
from shine_mcp.store.db import Database

log = logging.getLogger("shine")


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)  # opened by whoever enters `running()` first
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._users = 0
        self._lock = anyio.Lock()
        # Decoding a photo holds tens of MB: every decode (analyze_skin, chat uploads) waits its turn here,
        # one per core, so concurrent uploads queue instead of multiplying the memory they hold.
        self.analysis_limiter = anyio.CapacityLimiter(max(1, os.cpu_count() or 1))
        self.observers = Observers()  # outcomes for the web shell's metrics

    async def _start(self) -> None:
        await self.db.open()
        self.observers.database_opened(self.db)
        if self.settings.load_demo_catalog:
            async with self.db.one_process_at_a_time():  # workers starting together load it once
                loaded = await ensure_demo_catalog(self.db)
            if loaded:
                log.info("catalog was empty: loaded %d demo products", loaded)

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Register a clean-up (an integration's session, a worker) to run when the last user leaves."""
        self._on_stop.append(callback)

    async def _stop(self) -> None:
        for callback in reversed(self._on_stop):
            try:
                await callback()
            except Exception:  # one failing clean-up must not stop the others
                log.exception("clean-up %r failed", callback)
        self._on_stop.clear()
        await self.db.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Services]:
        async with self._lock:
            if self._users == 0:
                await self._start()
            self._users += 1
        try:
            yield self
        finally:
            with anyio.CancelScope(shield=True):  # close the engine even when the caller was cancelled
                async with self._lock:
                    self._users -= 1
                    if self._users == 0:
                        await self._stop()
