"""Serving the real web shell on a loopback port for the chat API and browser tests, and reading its
Server-Sent Events the way a browser does."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx

from agent.model import Finish, Message, ModelEvent, TextChunk, ToolCall, ToolSpec
from shine_mcp.config import Settings
from tests.conftest import make_settings
from tests.support.asgi import serve_asgi
from tests.support.postgres import free_port
from web_shell.app import create_app


@dataclass
class SSE:
    id: int
    event: str
    data: dict[str, Any]


def read_events(lines: Iterator[str], stop_after: int | None = None) -> list[SSE]:
    """Parse an SSE stream line by line; stop at `done` or after `stop_after` events."""
    events: list[SSE] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                events.append(
                    SSE(
                        int(fields.get("id", "0")), fields.get("event", "message"), json.loads(fields["data"])
                    )
                )
                if events[-1].event == "done" or (stop_after is not None and len(events) >= stop_after):
                    return events
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
    return events


def post_chat(
    client: httpx.Client, payload: dict[str, Any], **kwargs: Any
) -> tuple[httpx.Response, list[SSE]]:
    with client.stream("POST", "/api/chat", json=payload, **kwargs) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, read_events(response.iter_lines())


@contextmanager
def shine_web(data_dir: Path, *, model: Any = None, **overrides: Any) -> Iterator[tuple[str, Settings]]:
    """The real app (`create_app`) served by uvicorn on a free loopback port, on `data_dir`'s database."""
    port = free_port()
    settings = make_settings(data_dir, host="127.0.0.1", port=port, **overrides)
    with serve_asgi(create_app(settings, advisor_model=model), port) as url:
        yield url, settings


class GatedModel:
    """A scripted model that says `before`, waits until the test opens `gate`, then says `after`."""

    kind: Literal["scripted"] = "scripted"
    name = "gated"

    def __init__(self, before: str = "First part. ", after: str = "Second part.") -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.before, self.after = before, after

    async def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        yield TextChunk(self.before)
        self.started.set()
        await anyio.to_thread.run_sync(self.gate.wait, 30.0)
        yield TextChunk(self.after)
        yield Finish("end_turn")


class ScriptedModel:
    """A zero-latency model: calls the tools it is given in order, then answers with `answer`."""

    kind: Literal["scripted"] = "scripted"
    name = "scripted"

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], answer: str = "Done.") -> None:
        self.calls, self.answer = calls, answer

    async def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        starts = [
            i
            for i, m in enumerate(messages)
            if m["role"] == "user" and any(b.get("type") == "text" for b in m["content"])
        ]
        this_turn = messages[starts[-1] :] if starts else messages
        step = sum(
            1
            for m in this_turn
            if m["role"] == "assistant" and any(b.get("type") == "tool_use" for b in m["content"])
        )
        if step < len(self.calls):
            name, arguments = self.calls[step]
            yield ToolCall(f"call_{step}", name, arguments)
            yield Finish("tool_use")
            return
        yield TextChunk(self.answer)
        yield Finish("end_turn")
