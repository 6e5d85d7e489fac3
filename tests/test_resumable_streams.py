"""Resumable Streamable HTTP: a client whose stream drops in the middle of a tool call reconnects with
`Last-Event-ID` and gets the result, once, from the events `shine serve` kept in its database."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.server.mcpserver import Context
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.types import JSONRPCMessage, JSONRPCNotification, JSONRPCResponse
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.store.db import open_database
from shine_mcp.store.purge import purge_expired
from shine_mcp.store.stream_events import STREAM_EVENT_RETENTION, DatabaseEventStore, StreamEventScope
from tests.conftest import make_settings
from tests.support.asgi import serve_asgi
from tests.support.postgres import free_port
from web_shell.app import create_app

VERSION = "2025-11-25"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=utcnow().tzinfo)


@dataclass
class Event:
    id: str | None
    retry: int | None
    data: str

    @property
    def message(self) -> dict[str, Any] | None:
        return json.loads(self.data) if self.data else None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The SSE events of a response, as they arrive."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields:
                retry = fields.get("retry")
                yield Event(fields.get("id"), int(retry) if retry else None, fields.get("data", ""))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ") if name == "data" else value.strip()


class McpHttp:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http, self.session_id = http, ""

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": VERSION, **extra}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        return headers

    @asynccontextmanager
    async def post(self, message: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        async with self.http.stream("POST", "/mcp", json=message, headers=self.headers()) as response:
            response.raise_for_status()
            yield response

    async def initialize(self) -> None:
        hello = {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "resumer", "version": "1"},
        }
        async with self.post(
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
        ) as response:
            self.session_id = response.headers["mcp-session-id"]
            async for event in events(response):
                if event.message and event.message.get("id") == 1:
                    break
        async with self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}) as response:
            assert response.status_code == 202


class Watched(EventStore):
    """The app's own event store, telling the test when the answer to a request has been stored."""

    def __init__(self, inner: EventStore, request_id: int) -> None:
        self.inner, self.request_id, self.answer_stored = inner, request_id, threading.Event()

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        event_id = await self.inner.store_event(stream_id, message)
        if isinstance(message, JSONRPCResponse) and message.id == self.request_id:
            self.answer_stored.set()
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        return await self.inner.replay_events_after(last_event_id, send_callback)


async def test_a_stream_dropped_mid_tool_resumes_with_the_result_exactly_once(settings: Settings) -> None:
    app = create_app(settings)
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    async def slow_lookup(what: str, ctx: Context) -> str:
        """Takes as long as the test wants."""
        runs.append(what)
        await ctx.report_progress(1, 2, "looking")
        started.set()
        await anyio.to_thread.run_sync(release.wait, 20)
        return f"found {what}"

    with serve_asgi(app, free_port()) as url:
        manager = app.state.mcp_server.session_manager
        assert isinstance(manager.event_store, DatabaseEventStore)
        manager.event_store = watched = Watched(manager.event_store, 2)
        app.state.mcp_server.add_tool(slow_lookup, name="slow_lookup")
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            mcp = McpHttp(http)
            with anyio.fail_after(30):
                await mcp.initialize()
                call = {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {
                        "name": "slow_lookup",
                        "arguments": {"what": "niacinamide"},
                        "_meta": {"progressToken": 7},
                    },
                }
                before_drop: list[Event] = []
                async with mcp.post(call) as response:
                    async for event in events(response):
                        before_drop.append(event)
                        if event.message and event.message.get("method") == "notifications/progress":
                            break  # the connection drops here, with the tool still running
                assert started.is_set()
                release.set()
                # The server finishes the call with nobody listening, and keeps the answer in the database.
                assert await anyio.to_thread.run_sync(watched.answer_stored.wait, 20)

                resumed: list[Event] = []
                headers = mcp.headers(
                    **{"Last-Event-ID": str(before_drop[-1].id), "Accept": "text/event-stream"}
                )
                async with http.stream("GET", "/mcp", headers=headers) as response:
                    assert response.status_code == 200
                    async for event in events(response):
                        resumed.append(event)
                        if event.message and event.message.get("id") == 2:
                            break

    priming = before_drop[0]
    assert priming.data == "" and priming.id and priming.retry == 1000  # a cursor before anything else
    assert not any(e.message and e.message.get("id") == 2 for e in before_drop)
    answers = [e.message for e in resumed if e.message and "id" in e.message]
    assert len(answers) == 1 and answers[0]["result"]["content"][0]["text"] == "found niacinamide"
    assert not any(e.message and e.message.get("method") == "notifications/progress" for e in resumed)
    assert runs == ["niacinamide"]
    # Every event names the person the session serves, so erasing them erases these too (test_erasure.py).
    with sqlite3.connect(settings.data_dir / "shine.db") as connection:
        owners = {user for (user,) in connection.execute("SELECT user_id FROM mcp_stream_events")}
    assert owners == {settings.local_user}


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_a_last_event_id_replays_only_its_own_session_and_events_leave_after_retention(
    tmp_path: Path, request: pytest.FixtureRequest, dialect: str
) -> None:
    """Request ids repeat from session to session ("2" in each): a resume never crosses sessions, and the
    purge job deletes events past their retention."""
    url = request.getfixturevalue("postgres_url") if dialect == "postgresql" else None
    db = await open_database(make_settings(tmp_path, load_demo_catalog=False, database_url=url))
    clock = [NOW]
    store = DatabaseEventStore(db, clock=lambda: clock[0])
    replayed: list[tuple[str, str | None, list[str]]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if request.query_params.get("store"):
            message = JSONRPCNotification(jsonrpc="2.0", method=request.query_params["store"])
            event_id = await store.store_event("2", message)
            response = PlainTextResponse(event_id)
        else:
            seen: list[str] = []

            async def collect(event: EventMessage) -> None:
                seen.append(event.message.method)  # type: ignore[union-attr]

            stream = await store.replay_events_after(request.query_params["after"], collect)
            replayed.append((request.headers["mcp-session-id"], stream, seen))
            response = PlainTextResponse("")
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=StreamEventScope(inner))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            first_a = (await http.get("/", params={"store": "a1"}, headers={"mcp-session-id": "sa"})).text
            await http.get("/", params={"store": "b1"}, headers={"mcp-session-id": "sb"})
            await http.get("/", params={"store": "a2"}, headers={"mcp-session-id": "sa"})
            await http.get("/", params={"store": "b2"}, headers={"mcp-session-id": "sb"})
            await http.get("/", params={"after": first_a}, headers={"mcp-session-id": "sa"})
            await http.get("/", params={"after": first_a}, headers={"mcp-session-id": "sb"})
            await http.get("/", params={"after": "not-an-id"}, headers={"mcp-session-id": "sa"})
        assert replayed == [("sa", "2", ["a2"]), ("sb", None, []), ("sa", None, [])]

        clock[0] = NOW + STREAM_EVENT_RETENTION + timedelta(seconds=1)
        assert (await purge_expired(db, clock[0]))["mcp_stream_events"] == 4
    finally:
        await db.close()


async def test_a_last_event_id_replays_nothing_to_another_person_in_the_same_session(tmp_path: Path) -> None:
    """The events are that person's tool results: someone else who learns the session id, signed in as
    themselves, resumes nothing (and neither does a request that names no one)."""
    db = await open_database(make_settings(tmp_path, load_demo_catalog=False))
    store = DatabaseEventStore(db)
    replayed: list[tuple[str | None, list[str]]] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if request.query_params.get("store"):
            message = JSONRPCNotification(jsonrpc="2.0", method=request.query_params["store"])
            response = PlainTextResponse(await store.store_event("2", message))
        else:
            seen: list[str] = []

            async def collect(event: EventMessage) -> None:
                seen.append(event.message.method)  # type: ignore[union-attr]

            await store.replay_events_after(request.query_params["after"], collect)
            replayed.append((request.headers.get("x-person"), seen))
            response = PlainTextResponse("")
        await response(scope, receive, send)

    def person(scope: Scope) -> str | None:  # what authentication found, as the web shell's `http_user_id`
        return Request(scope).headers.get("x-person")

    transport = httpx.ASGITransport(app=StreamEventScope(inner, user_of=person))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            ana = {"mcp-session-id": "s1", "x-person": "usr_ana"}
            first = (await http.get("/", params={"store": "a1"}, headers=ana)).text
            await http.get("/", params={"store": "a2"}, headers=ana)
            await http.get(
                "/", params={"after": first}, headers={"mcp-session-id": "s1", "x-person": "usr_bob"}
            )
            await http.get("/", params={"after": first}, headers={"mcp-session-id": "s1"})
            await http.get("/", params={"after": first}, headers=ana)
        assert replayed == [("usr_bob", []), (None, []), ("usr_ana", ["a2"])]
    finally:
        await db.close()
