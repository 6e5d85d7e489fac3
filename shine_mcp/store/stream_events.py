"""Resumable Streamable HTTP streams: the SDK's `EventStore`, kept in the database.

Every message the server sends on an MCP stream (and the empty priming event that opens a stream) is
stored in `mcp_stream_events` and gets the row's id as its SSE event id. A client whose stream dropped
reconnects with `Last-Event-ID`, and the events after that id on the same stream of the same session are
sent again, in order: nothing is lost and nothing is sent twice. Rows live `STREAM_EVENT_RETENTION`, then
the purge job (`store/purge.py`) deletes them.

The SDK names a stream by its request id only ("1", "2", ...), which repeats from session to session, so
each row also carries the MCP session it belongs to (`scope`), taken from the request by
`StreamEventScope`, the ASGI wrapper around the `/mcp` app. A `Last-Event-ID` from another session, or from
another person in the same session, replays nothing.

The messages are tool results, personal data: each row also names the person the session's requests came
from (`user_id`), so erasing the person (`forget_user_stream_events`) erases what they were sent too.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, EventCallback, EventMessage, EventStore
from mcp.types import JSONRPCMessage, jsonrpc_message_adapter
from sqlalchemy import JSON, Column, DateTime, Index, delete, insert, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shine_mcp.clock import utcnow
from shine_mcp.store.db import Database

log = logging.getLogger("shine.streams")

# Long enough for a client to come back after a dropped connection or a laptop lid closed over lunch;
# short enough that the table stays small. Past it, a resume replays nothing and the client starts over.
STREAM_EVENT_RETENTION = timedelta(hours=1)
# Suggested to clients in the priming event's `retry:` field: how long to wait before reconnecting.
RETRY_INTERVAL_MS = 1000


class StreamEvent(SQLModel, table=True):
    __tablename__ = "mcp_stream_events"
    __table_args__ = (
        Index("ix_mcp_stream_events_stream", "scope", "stream_id", "id"),
        Index("ix_mcp_stream_events_created_at", "created_at"),
        Index("ix_mcp_stream_events_user_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)  # the SSE event id: increasing, so it orders
    scope: str = Field(max_length=64)  # the MCP session id (or a one-off key before the session has one)
    stream_id: str = Field(max_length=128)  # the SDK's stream: a request id, or its standalone GET stream
    user_id: str | None = Field(default=None, max_length=64)  # who the session serves; None if not known
    # The JSON-RPC message as sent; SQL NULL for a priming event (which carries no message).
    message: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


TABLE = StreamEvent.__table__  # type: ignore[attr-defined]


# Who an HTTP request to `/mcp` comes from, given its ASGI scope once authentication has run; None when it
# names no one. The web shell passes `shine_mcp.auth.identity`'s answer (the store does not import identity).
UserOf = Callable[[Scope], str | None]


class _Cell:
    """The session a request belongs to. A request that opens a session has no id yet: it starts with a
    one-off key and takes the session id when the response names it. The session's message router runs
    in a copy of that request's context, so it sees the same cell, and stores under the session id too.

    The person is read when the first event is stored, not when the request arrives: the `/mcp` app
    authenticates the request inside, after this wrapper, and writes the token's user into the same scope."""

    def __init__(self, key: str, scope: Scope | None = None, user_of: UserOf | None = None) -> None:
        self.key = key
        self._scope, self._user_of = scope, user_of
        self._user_id: str | None = None

    @property
    def user_id(self) -> str | None:
        if self._user_id is None and self._user_of is not None and self._scope is not None:
            self._user_id = self._user_of(self._scope)
        return self._user_id


_scope: ContextVar[_Cell | None] = ContextVar("shine_stream_scope", default=None)


def current_scope() -> str:
    cell = _scope.get()
    return cell.key if cell is not None else ""


def current_user_id() -> str | None:
    cell = _scope.get()
    user_id = cell.user_id if cell is not None else None
    return user_id[:64] if user_id else None


class StreamEventScope:
    """ASGI wrapper for the MCP app: marks each request with the MCP session it belongs to and, through
    `user_of`, the person it comes from."""

    def __init__(self, app: ASGIApp, user_of: UserOf | None = None) -> None:
        self.app, self.user_of = app, user_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == MCP_SESSION_ID_HEADER.encode()
            ),
            None,
        )
        cell = _Cell(session_id[:64] if session_id else "new:" + secrets.token_hex(16), scope, self.user_of)
        token = _scope.set(cell)

        async def send_naming_the_session(message: Message) -> None:
            if message["type"] == "http.response.start" and session_id is None:
                for name, value in message.get("headers", []):
                    if name.decode("latin-1").lower() == MCP_SESSION_ID_HEADER:
                        cell.key = value.decode("latin-1")[:64]
            await send(message)

        try:
            await self.app(scope, receive, send_naming_the_session)
        finally:
            _scope.reset(token)


class DatabaseEventStore(EventStore):
    """`EventStore` on the shared database, so the events of a stream outlive the connection that carried
    them (and the process, when several workers share PostgreSQL)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db, self._clock = db, clock

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        values = {
            "scope": current_scope(),
            "stream_id": stream_id[:128],
            "user_id": current_user_id(),
            "message": None
            if message is None
            else message.model_dump(mode="json", by_alias=True, exclude_unset=True),
            "created_at": self._clock(),
        }

        def work(connection: Connection) -> int:
            row_id = connection.execute(insert(TABLE).values(**values).returning(TABLE.c.id)).scalar_one()
            connection.commit()
            return int(row_id)

        return str(await self._db.write(work))

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        if not last_event_id.isdigit() or len(last_event_id) > 18:
            return None
        after, scope, since = int(last_event_id), current_scope(), self._clock() - STREAM_EVENT_RETENTION
        # Only to the person the events were sent to: a session id is no proof of who is asking.
        theirs = TABLE.c.user_id.is_not_distinct_from(current_user_id())

        def work(connection: Connection) -> tuple[str | None, list[tuple[int, dict[str, Any]]]]:
            row = connection.execute(
                select(TABLE.c.stream_id).where(TABLE.c.id == after, TABLE.c.scope == scope, theirs)
            ).first()
            if row is None:
                return None, []
            events = connection.execute(
                select(TABLE.c.id, TABLE.c.message)
                .where(
                    TABLE.c.scope == scope,
                    theirs,
                    TABLE.c.stream_id == row.stream_id,
                    TABLE.c.id > after,
                    TABLE.c.message.is_not(None),
                    TABLE.c.created_at >= since,
                )
                .order_by(TABLE.c.id)
            ).all()
            return str(row.stream_id), [(int(event.id), dict(event.message)) for event in events]

        stream_id, events = await self._db.read(work)
        for event_id, message in events:
            await send_callback(EventMessage(jsonrpc_message_adapter.validate_python(message), str(event_id)))
        return stream_id


async def forget_user_stream_events(db: Database, user_id: str) -> int:
    """Erase what the person's MCP sessions were sent (part of deleting their data); how many rows went."""

    def work(connection: Connection) -> int:
        deleted = int(connection.execute(delete(TABLE).where(TABLE.c.user_id == user_id)).rowcount or 0)
        connection.commit()
        return deleted

    return await db.write(work)


def purge_statement(now: datetime) -> Any:
    """Delete the events past their retention (run by the purge job)."""
    return delete(TABLE).where(TABLE.c.created_at < now - STREAM_EVENT_RETENTION)
