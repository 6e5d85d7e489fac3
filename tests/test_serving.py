"""`shine serve`'s HTTP layer: uvicorn on uvloop with httptools' parser (h11 only where httptools is missing),
each with the request-head deadline (408) and the 16 KiB head limit (400) uvicorn lacks or keeps only for h11.

A small ASGI app stands in for Shine's so these tests exercise the connection handling alone: uvicorn is
configured by `uvicorn_config` exactly as `shine serve` configures it, then driven over raw sockets."""

from __future__ import annotations

import asyncio
import gc
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from shine_mcp.config import Settings
from tests.support.postgres import free_port
from web_shell.serving import (
    MAX_HEADER_BYTES,
    FreezeAfterStartup,
    HeaderDeadlineH11Protocol,
    HeaderDeadlineHttpToolsProtocol,
    HeaderDeadlineProtocol,
    uvicorn_config,
)

PROTOCOLS = [
    pytest.param(HeaderDeadlineHttpToolsProtocol, id="httptools"),
    pytest.param(HeaderDeadlineH11Protocol, id="h11"),
]


async def tiny_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with the class of the event loop serving it, after reading the whole body."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    loop = type(asyncio.get_running_loop())
    body = f"{loop.__module__}.{loop.__qualname__}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def running(settings: Settings, protocol: type[asyncio.Protocol] | None = None) -> Iterator[uvicorn.Server]:
    """uvicorn configured as `shine serve` configures it (`protocol`: another HTTP protocol class), on the
    port `settings` name."""
    config = uvicorn_config(tiny_app, settings)
    config.log_level = "warning"
    if protocol is not None:
        config.http = protocol
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", settings.port), timeout=0.1).close()
                break
            except OSError:
                select.select([], [], [], 0.05)  # the server is starting: try again shortly
        else:
            raise RuntimeError(f"nothing listens on port {settings.port}")
        yield server
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def serving(settings: Settings, protocol: type[asyncio.Protocol] | None = None) -> Iterator[int]:
    """`running` on a free port: yields the port."""
    port = free_port()
    with running(settings.model_copy(update={"host": "127.0.0.1", "port": port}), protocol):
        yield port


def answer_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends before it closes the connection; fails if it neither answers nor closes."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for more than {seconds} s")
    except ConnectionResetError:
        pass  # closed with bytes of ours unread: what it sent before may be all there is
    return received


def responses_within(sock: socket.socket, count: int, seconds: float) -> bytes:
    """Reads until `count` whole responses (each a head and the body its content-length gives) arrived."""
    sock.settimeout(seconds)
    received = b""
    while received.count(b"HTTP/1.1 ") < count or not _bodies_complete(received):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def _bodies_complete(received: bytes) -> bool:
    rest = received
    while rest:
        head, found, rest = rest.partition(b"\r\n\r\n")
        if not found:
            return False
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


def request(extra_headers: bytes = b"") -> bytes:
    return b"GET /loop HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + b"\r\n"


def padding_header(head_bytes: int) -> bytes:
    """An `x-pad` header line that makes `request(...)` exactly `head_bytes` long."""
    bare = len(request(b"x-pad: \r\n"))
    return b"x-pad: " + b"a" * (head_bytes - bare) + b"\r\n"


def test_shine_serve_runs_on_uvloop_and_parses_requests_with_httptools(settings: Settings) -> None:
    assert HeaderDeadlineProtocol is HeaderDeadlineHttpToolsProtocol
    assert uvicorn_config(tiny_app, settings).http is HeaderDeadlineHttpToolsProtocol
    with serving(settings) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request(b"Connection: close\r\n"))
        answer = answer_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"uvloop.Loop")


def test_where_httptools_is_missing_h11_serves_with_the_same_deadline(tmp_path: Path) -> None:
    (tmp_path / "httptools").mkdir()
    (tmp_path / "httptools" / "__init__.py").write_text("raise ImportError('httptools is not installed')\n")
    root = Path(__file__).resolve().parent.parent
    chosen = subprocess.run(
        [
            sys.executable,
            "-c",
            "from web_shell.serving import HeaderDeadlineProtocol as p; print(p.__name__)",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert chosen.stdout.strip() == HeaderDeadlineH11Protocol.__name__


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_silent_connection_gets_408_after_the_header_timeout(
    settings: Settings, protocol: type[asyncio.Protocol]
) -> None:
    settings = settings.model_copy(update={"header_timeout": 0.3})
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        answer = answer_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_head_that_never_ends_gets_408_after_the_header_timeout(
    settings: Settings, protocol: type[asyncio.Protocol]
) -> None:
    settings = settings.model_copy(update={"header_timeout": 0.3})
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /loop HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = answer_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_next_request_on_a_kept_alive_connection_has_its_own_header_deadline(
    settings: Settings, protocol: type[asyncio.Protocol]
) -> None:
    settings = settings.model_copy(update={"header_timeout": 0.3})
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request())
        first = responses_within(sock, 1, 5)
        sock.sendall(b"GET /loop HTTP/1.1\r\nHost: 12")  # the start of a second head, and nothing more
        rest = answer_within(sock, 5)
    assert first.startswith(b"HTTP/1.1 200")
    assert rest.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_read_whole_leaves_no_head_deadline_running(
    settings: Settings, protocol: type[asyncio.Protocol]
) -> None:
    # A deadline left running after its head arrived would cut a kept-alive connection with a stray 408
    # (and cost a timer per request).
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    with (
        running(settings, protocol) as server,
        socket.create_connection(("127.0.0.1", settings.port)) as sock,
    ):
        for _ in range(3):
            sock.sendall(request())
            assert responses_within(sock, 1, 5).startswith(b"HTTP/1.1 200")
            [connection] = server.server_state.connections
            assert isinstance(connection, HeaderDeadlineH11Protocol | HeaderDeadlineHttpToolsProtocol)
            assert connection.head_deadline.timer is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_whose_head_trickles_in_within_the_deadline_is_served(
    settings: Settings, protocol: type[asyncio.Protocol]
) -> None:
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        for piece in (b"GET /lo", b"op HTTP/1.1\r\nHo", b"st: 127.0.0.1\r\nConnection: close\r\n", b"\r\n"):
            sock.sendall(piece)
        answer = answer_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_pipelined_requests_are_all_answered(settings: Settings, protocol: type[asyncio.Protocol]) -> None:
    body = b'{"hello": "there"}'
    post = b"POST /loop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(post + request() + post + request(b"Connection: close\r\n"))
        answer = answer_within(sock, 5)
    assert answer.count(b"HTTP/1.1 200") == 4


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_head_of_exactly_16_kib_is_served(settings: Settings, protocol: type[asyncio.Protocol]) -> None:
    head = request(padding_header(MAX_HEADER_BYTES))
    assert len(head) == MAX_HEADER_BYTES
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, len(head), 1000):  # in pieces, as over a slow link
            sock.sendall(head[start : start + 1000])
        first = responses_within(sock, 1, 5)
    assert first.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("piece", [1000, MAX_HEADER_BYTES * 2], ids=["in pieces", "at once"])
def test_a_head_over_16_kib_gets_400_however_it_arrives(settings: Settings, piece: int) -> None:
    # h11 refuses only a head still incomplete past the limit (the endless header below); the httptools
    # protocol measures every head, so one byte over is refused whether its last piece completes it or not.
    head = request(padding_header(MAX_HEADER_BYTES + 1))
    with serving(settings) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        for start in range(0, len(head), piece):
            sock.sendall(head[start : start + piece])
        answer = answer_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_endless_header_is_refused_at_the_limit_not_held_until_the_deadline(
    settings: Settings, protocol: type[asyncio.Protocol]
) -> None:
    settings = settings.model_copy(update={"header_timeout": 60.0})
    with serving(settings, protocol) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /loop HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        for _ in range(4 * MAX_HEADER_BYTES // 1024):  # 4 times the limit, and the head still goes on
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"a" * 1024)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = answer_within(sock, 5)  # well before the 60 s deadline
    assert answer.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connections_beyond_the_limit_get_503(settings: Settings, protocol: type[asyncio.Protocol]) -> None:
    settings = settings.model_copy(update={"max_connections": 2, "header_timeout": 30.0})
    with serving(settings, protocol) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request(b"Connection: close\r\n"))
                answer = answer_within(sock, 5)
        finally:
            for s in idle:
                s.close()
    assert answer.startswith(b"HTTP/1.1 503")


async def test_shine_serve_keeps_what_start_up_made_out_of_the_garbage_collectors_walks() -> None:
    """A full collection walked every object start-up made (157-167 ms at ~260 000 of them, about once in
    1 600 tool calls); once the app has started they are frozen, and a request's collection skips them."""
    made_at_start_up: list[list[int]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        made_at_start_up.extend([i] for i in range(5000))
        await send({"type": "lifespan.startup.complete"})

    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])

    frozen_before = gc.get_freeze_count()
    try:
        await FreezeAfterStartup(app)({"type": "lifespan"}, receive, send)
        frozen = gc.get_freeze_count() - frozen_before
    finally:
        gc.unfreeze()  # this test process starts many apps: give the collector its objects back

    assert sent == ["lifespan.startup.complete"]
    assert frozen >= len(made_at_start_up)
