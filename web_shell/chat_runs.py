"""Advisor replies as background runs whose events are kept in order, so the Server-Sent Events stream of a
reply can be read from the start or resumed after a dropped connection (`Last-Event-ID`).

A run belongs to the process that started it: it lives in memory while it runs and for `KEEP_FINISHED`
after, which covers a phone switching networks; after that, the saved conversation is the record.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio

KEEP_FINISHED = 600.0  # seconds a finished run stays resumable
KEEP_ALIVE = 15.0  # an SSE comment this often while a tool works, so proxies keep the stream open


def sse_frame(seq: int, name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"id: {seq}\nevent: {name}\ndata: {payload}\n\n".encode()


@dataclass
class Run:
    id: str
    chat_id: str
    user_id: str
    frames: list[bytes] = field(default_factory=list)
    finished_at: float | None = None
    _changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if self.finished:
            return
        self.frames.append(sse_frame(len(self.frames) + 1, name, data))
        self._wake()

    def finish(self) -> None:
        if self.finished_at is None:
            self.finished_at = time.monotonic()
            self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def stream(self, after: int = 0) -> AsyncIterator[bytes]:
        """Every frame after sequence number `after`, then the live ones, until the run ends."""
        sent = max(0, after)
        while True:
            while sent < len(self.frames):
                sent += 1
                yield self.frames[sent - 1]
            if self.finished:
                return
            changed = self._changed
            with anyio.move_on_after(KEEP_ALIVE) as waiting:
                await changed.wait()
            if waiting.cancelled_caught:
                yield b": keep-alive\n\n"


class Runs:
    """The runs of this process: by id, and the one running per chat (a chat answers one message at a time)."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._active: dict[str, str] = {}

    def active_in(self, chat_id: str) -> Run | None:
        run_id = self._active.get(chat_id)
        run = self._runs.get(run_id) if run_id else None
        return run if run is not None and not run.finished else None

    def start(self, run: Run) -> None:
        self._evict()
        self._runs[run.id] = run
        self._active[run.chat_id] = run.id

    def end(self, run: Run) -> None:
        run.finish()
        if self._active.get(run.chat_id) == run.id:
            del self._active[run.chat_id]

    def get(self, run_id: str, user_id: str) -> Run | None:
        """A run of this person (another person's run does not exist for them)."""
        run = self._runs.get(run_id)
        return run if run is not None and run.user_id == user_id else None

    def _evict(self) -> None:
        now = time.monotonic()
        for run_id, run in list(self._runs.items()):
            if run.finished_at is not None and now - run.finished_at > KEEP_FINISHED:
                del self._runs[run_id]
