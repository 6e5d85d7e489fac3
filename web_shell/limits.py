"""Reading a request body within a size limit and deadlines, while it streams in.

Every route of the web shell that reads a body does it here (`read_body`, `read_json`, or `bounded(...)`
for `.form()`): a Content-Length announcing more than the limit is refused unread, and a streamed body is
refused at the first chunk past the limit, so nothing holds more than the limit plus one chunk. A body
that stalls (`SHINE_BODY_IDLE_TIMEOUT`) or trickles (`SHINE_BODY_TIMEOUT`) gets 408. A client that hangs
up mid-body is one INFO line, not a traceback. Slow *headers* are the server's to time out
(`web_shell.serving`). The /mcp endpoint's body is the MCP SDK's (its `max_request_body_size`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from shine_mcp.config import Settings

log = logging.getLogger("shine.http")

# The unread rest of a refused body is never read: answer, then end the connection.
CLOSE = {"Connection": "close"}
MAX_FORM_BYTES = 64 * 1024  # the web shell's own HTML forms are a few hundred bytes


class BodyRefused(HTTPException):
    """A body this route will not read to the end. An `HTTPException`, so a route that does not catch it
    still answers with the status (Starlette renders it); routes with their own error format catch it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, headers=CLOSE)
        self.code, self.message = code, message


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large", f"the request body is over {_size(limit)}")


class BodyTimedOut(BodyRefused):
    def __init__(self) -> None:
        super().__init__(408, "timeout", "the request body arrived too slowly; send it again")


class ClientGone(BodyRefused):
    """The client hung up mid-body: there is no one to answer (the status only keeps Starlette quiet)."""

    def __init__(self) -> None:
        super().__init__(400, "client_gone", "the client closed the connection before sending its body")


def bounded(request: Request, limit: int, settings: Settings) -> Request:
    """The same request, whose body stream raises `BodyTooLarge`, `BodyTimedOut` or `ClientGone` instead
    of reading past `limit` bytes, waiting past the deadlines, or failing with a bare `ClientDisconnect`.
    Use it for `.form()`; `read_body` and `read_json` use it for you."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    idle, total = settings.body_idle_timeout, settings.body_timeout
    deadline = anyio.current_time() + total
    inner = request.receive
    received = 0

    async def receive() -> Message:
        nonlocal received
        wait = min(idle, deadline - anyio.current_time())
        message: Message | None = None
        if wait > 0:
            with anyio.move_on_after(wait):
                message = await inner()
        if message is None:
            log.info(
                "%s %s: 408 after %d bytes of its request body (too slow)",
                request.method,
                request.url.path,
                received,
            )
            raise BodyTimedOut()
        if message["type"] == "http.disconnect":
            log.info(
                "%s %s: the client hung up after %d bytes of its request body",
                request.method,
                request.url.path,
                received,
            )
            raise ClientGone()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return Request(request.scope, receive)


async def read_body(request: Request, limit: int, settings: Settings) -> bytes:
    """The whole body, at most `limit` bytes, within the body deadlines (see the module docstring)."""
    if hasattr(request, "_body"):  # read before, e.g. by a middleware: the stream is gone
        body = await request.body()
        if len(body) > limit:
            raise BodyTooLarge(limit)
        return body
    try:
        return await bounded(request, limit, settings).body()
    except ClientDisconnect as exc:  # raised by Starlette itself, e.g. on a disconnect it saw first
        log.info("%s %s: the client hung up before its request body ended", request.method, request.url.path)
        raise ClientGone() from exc


async def read_json(request: Request, limit: int, settings: Settings) -> Any:
    """The body parsed as JSON; `ValueError` when it is not JSON (or not UTF-8)."""
    return json.loads(await read_body(request, limit, settings))


async def read_form(request: Request, settings: Settings, limit: int = MAX_FORM_BYTES) -> FormData:
    """A small HTML form (sign-in, consent, the simulated checkout's buttons): fields only, no files."""
    if getattr(request, "_form", None) is not None:  # parsed before (the SDK's client authentication does)
        return await request.form()
    try:
        return await bounded(request, limit, settings).form(max_files=0, max_fields=50)
    except ClientDisconnect as exc:
        log.info("%s %s: the client hung up before its form ended", request.method, request.url.path)
        raise ClientGone() from exc


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.0f} MB"
    return f"{max(1, limit // 1024)} KB"
