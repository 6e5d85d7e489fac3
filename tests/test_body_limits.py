"""Every route that reads a request body reads it within its limit and deadlines while it streams in: an
oversized body is refused at the first byte past the limit, a stalled or trickling body gets 408, a client
that hangs up mid-body is one INFO line, and `shine serve` closes connections whose headers never finish.

The app is driven at the ASGI level (a scripted `receive` plays the client and counts what the app pulled),
except for the connection-level checks, which use raw sockets against uvicorn configured as `shine serve`
configures it."""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.types import Message

from shine_mcp.config import Settings
from shine_mcp.services import Services
from tests.support.postgres import free_port
from web_shell.app import create_app

CHUNK = 64 * 1024
ENDLESS = 8 * 1024 * 1024  # what a hostile client would go on sending; the app must stop long before
BOUNDARY = "shinetestboundary"
UPLOAD_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="me.png"\r\n'
    "Content-Type: image/png\r\n\r\n"
).encode()

# path, content type, the route's body limit
ROUTES: list[tuple[str, str, int]] = [
    ("/stripe/webhook", "application/json", 1024 * 1024),
    ("/fulfilment/callback", "application/json", 1024 * 1024),
    ("/api/chat", "application/json", 64 * 1024),
    ("/api/my-data/delete", "application/json", 16 * 1024),
    ("/api/uploads", f"multipart/form-data; boundary={BOUNDARY}", 1024 * 1024 + 64 * 1024),
]


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    # 1 MiB photos keep the upload case as quick as the others. No fulfilment worker: stopped mid-query
    # it leaves an aiosqlite close pending that the test's event loop would wait on forever.
    return settings.model_copy(
        update={
            "max_photo_bytes": 1024 * 1024,
            "body_idle_timeout": 0.3,
            "body_timeout": 1.0,
            "fulfilment_worker": False,
        }
    )


@dataclass
class Client:
    """The client side of one request: hands the app body chunks on demand and records the answer."""

    first: bytes = b""
    total: int = ENDLESS
    then: Literal["end", "stall", "hang_up"] = "end"
    sent: int = 0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    answer: bytes = b""

    async def receive(self) -> Message:
        if self.sent < self.total:
            chunk = self.first if self.sent == 0 and self.first else b"\0" * CHUNK
            self.sent += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}
        if self.then == "stall":
            await anyio.sleep_forever()
        if self.then == "hang_up":
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.answer += message.get("body", b"")


@asynccontextmanager
async def running(settings: Settings, services: Services | None = None) -> AsyncIterator[Starlette]:
    app = create_app(settings, services)
    async with app.router.lifespan_context(app):
        yield app


async def post(
    app: Starlette, path: str, content_type: str, client: Client, length: int | None = None
) -> Client:
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", content_type.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    with anyio.fail_after(10):
        await app(scope, client.receive, client.send)
    return client


@pytest.mark.parametrize(("path", "content_type", "limit"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_an_endless_body_is_refused_as_soon_as_it_passes_the_routes_limit(
    limited_settings: Settings, path: str, content_type: str, limit: int
) -> None:
    first = UPLOAD_HEAD if path == "/api/uploads" else b""
    async with running(limited_settings) as app:
        client = await post(app, path, content_type, Client(first=first))
    assert client.status == 413
    assert client.sent <= limit + CHUNK, f"the app read {client.sent} bytes of a body limited to {limit}"
    assert client.headers.get("connection") == "close"  # the rest is never read: the connection ends


@pytest.mark.parametrize(("path", "content_type", "limit"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_a_body_announced_larger_than_the_limit_is_refused_unread(
    limited_settings: Settings, path: str, content_type: str, limit: int
) -> None:
    async with running(limited_settings) as app:
        client = await post(app, path, content_type, Client(), length=300 * 1024 * 1024)
    assert client.status == 413
    assert client.sent == 0


@pytest.mark.parametrize(("path", "content_type", "limit"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_a_body_that_stalls_is_answered_408_within_the_idle_timeout(
    limited_settings: Settings, path: str, content_type: str, limit: int
) -> None:
    first = UPLOAD_HEAD if path == "/api/uploads" else b"{"
    async with running(limited_settings) as app:
        client = await post(app, path, content_type, Client(first=first, total=1, then="stall"))
    assert client.status == 408
    assert client.headers.get("connection") == "close"


async def test_a_client_that_hangs_up_mid_message_is_one_info_line(
    limited_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running(limited_settings) as app:
        caplog.clear()
        await post(
            app, "/api/chat", "application/json", Client(first=b'{"message": "hel', total=1, then="hang_up")
        )
        records = [r for r in caplog.records if r.name.startswith(("shine", "uvicorn", "starlette"))]
    assert [r for r in records if r.levelno >= logging.WARNING] == []
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert "hung up" in records[0].getMessage()
    assert records[0].exc_info is None


# --- connections: uvicorn as `shine serve` runs it -----------------------------------------------------
@contextmanager
def serving(settings: Settings) -> Iterator[int]:
    from web_shell.serving import uvicorn_config

    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    config = uvicorn_config(create_app(settings), settings)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait_listening(port)
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


def _wait_listening(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            select.select([], [], [], 0.05)  # the server is starting: try again shortly
    raise RuntimeError(f"nothing listens on port {port}")


def answer_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends before it closes the connection; fails if it neither answers nor closes."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for more than {seconds} s")
    return received


def test_a_client_trickling_a_body_gets_408_within_the_body_timeout(limited_settings: Settings) -> None:
    settings = limited_settings.model_copy(update={"body_idle_timeout": 5.0, "body_timeout": 1.0})
    with serving(settings) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        # a byte every 50 ms: never idle long enough for the idle timeout, but far too slow overall
        for _ in range(200):
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
            sock.sendall(b" ")
        answer = answer_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_client_that_never_finishes_its_headers_is_disconnected(limited_settings: Settings) -> None:
    settings = limited_settings.model_copy(update={"header_timeout": 0.5})
    with serving(settings) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = answer_within(sock, 5)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_a_silent_connection_is_disconnected_after_the_header_timeout(limited_settings: Settings) -> None:
    settings = limited_settings.model_copy(update={"header_timeout": 0.5})
    with serving(settings) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        answer = answer_within(sock, 5)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_connections_beyond_the_limit_get_503(limited_settings: Settings) -> None:
    settings = limited_settings.model_copy(update={"max_connections": 2, "header_timeout": 30.0})
    with serving(settings) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answer = answer_within(sock, 5)
        finally:
            for s in idle:
                s.close()
    assert answer.startswith(b"HTTP/1.1 503")
