"""How `shine serve` runs the web shell under uvicorn: the event loop, the HTTP parser, connection limits and
the timeouts uvicorn lacks.

Every request costs CPU in the event loop and the HTTP parser before Shine's code runs, and on a small
machine that is what caps throughput: `shine serve` runs on uvloop (libuv; uvicorn's `loop="auto"` takes it
when installed) and parses with httptools (llhttp, in C) instead of asyncio's pure-Python loop and h11.
uvicorn closes idle keep-alive connections (`timeout_keep_alive`), but it never times out a connection that
is slow to send a request's headers (800 such sockets stay open as long as their clients like), and it caps
a request head's size only on h11 (`h11_max_incomplete_event_size`). `HeaderDeadlineHttpToolsProtocol` is
uvicorn's httptools protocol plus both: a deadline for each request's head (`SHINE_HEADER_TIMEOUT`, 408) and
the 16 KiB head limit (400). `HeaderDeadlineH11Protocol`, uvicorn's h11 protocol plus the deadline (h11
keeps the limit), serves only where httptools is not installed. `limit_concurrency` (`SHINE_MAX_CONNECTIONS`)
answers 503 past a number of open connections instead of holding them all. Slow *bodies* are timed out
where they are read (`web_shell.limits`). Behind a reverse proxy these limits belong there too (nginx's
`client_header_timeout`, `client_body_timeout`, `large_client_header_buffers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from typing import Any, Literal

import h11
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from shine_mcp.config import Settings
from shine_mcp.logs import configure_logging

log = logging.getLogger("shine.serve")

MAX_HEADER_BYTES = 16 * 1024  # h11's default, stated: a request head larger than this gets 400
KEEP_ALIVE_SECONDS = 5
TOO_SLOW = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
TOO_LARGE = "Request header too large."


class ServeConfig(uvicorn.Config):
    """uvicorn's Config with the one extra setting the header-deadline protocols read."""

    def __init__(self, app: Any, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout


class HeadDeadline:
    """One connection's deadline for a request head: `start` arms it (if not armed), `stop` disarms it, and
    `expired` runs when it passes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float, expired: Callable[[], None]) -> None:
        self.loop, self.seconds, self.expired = loop, seconds, expired
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.timer is None:
            self.timer = self.loop.call_later(self.seconds, self._expire)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        self.timer = None
        self.expired()


class HeaderDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request's head.

    The deadline starts when the connection opens, and again at the first byte of each next request on a
    kept-alive connection (the keep-alive timeout covers the wait for that byte); it ends when h11 has
    the whole head. A connection still without one at the deadline gets 408 and is closed."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_deadline = HeadDeadline(
            self.loop, getattr(config, "header_timeout", 10.0), self._head_too_slow
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_deadline.start()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self.head_deadline.stop()
        elif self.conn.their_state is h11.IDLE:  # part of a head, or the first bytes of the next one
            self.head_deadline.start()
        else:
            self.head_deadline.stop()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_deadline.stop()
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            _close_too_slow(self)


def _close_too_slow(protocol: Any) -> None:
    """Answers 408 and closes: `protocol` is one of the header-deadline protocols."""
    protocol.logger.debug(
        "closed a connection that sent no request head within %s s", protocol.head_deadline.seconds
    )
    protocol.transport.write(TOO_SLOW)
    protocol.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 serves
    HeaderDeadlineProtocol: type[asyncio.Protocol] = HeaderDeadlineH11Protocol
else:

    class HeaderDeadlineHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, plus a deadline for each request's head and a limit on its size.

        The deadline works as `HeaderDeadlineH11Protocol`'s. The limit (`MAX_HEADER_BYTES`, what h11 keeps):
        while a head is incomplete, every byte received since it began counts, so a head that never ends is
        refused once past the limit rather than buffered until the deadline; a complete head is measured from
        its parts (request line and header lines), so the limit holds however the head was split. Past it:
        400, and the connection is closed, as uvicorn does on h11."""

        def __init__(
            self,
            config: uvicorn.Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self.head_deadline = HeadDeadline(
                self.loop, getattr(config, "header_timeout", 10.0), self._head_too_slow
            )
            # Where the parser is: between requests, inside a head, or past one (body, or waiting to answer).
            self.reading: Literal["between", "head", "past"] = "between"
            self.head_bytes = 0  # bytes of the current incomplete head received so far
            self.heads_completed = self.messages_completed = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_deadline.start()

        def data_received(self, data: bytes) -> None:
            reading, heads_completed = self.reading, self.heads_completed
            messages_completed = self.messages_completed
            super().data_received(data)
            if self.transport.is_closing():
                self.head_deadline.stop()
                return
            if self.reading == "past" or (
                self.reading == "between" and self.messages_completed != messages_completed
            ):
                return  # a body to read, or this chunk ended with a whole request: no head is pending
            # A head in progress, or bytes before one (the first of the next request): its deadline runs.
            self.head_deadline.start()
            if self.reading == "head" and reading != "past" and self.heads_completed == heads_completed:
                # The head began at (or before) this chunk's first byte: all of the chunk is head. (One that began
                # after another request within the chunk is counted from the next chunk on, and whole when done.)
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEADER_BYTES:
                    self._refuse_large_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self.head_deadline.stop()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.reading = "head"
            self.head_bytes = 0

        def on_headers_complete(self) -> None:
            self.reading = "past"
            self.heads_completed += 1
            self.head_deadline.stop()
            if self._complete_head_bytes() > MAX_HEADER_BYTES:
                # Raised inside the parser's callback: feed_data raises HttpParserCallbackError, which uvicorn
                # answers with 400 and a close; the request never reaches the app.
                raise ValueError(TOO_LARGE)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self.reading = "between"
            self.messages_completed += 1
            super().on_message_complete()

        def _complete_head_bytes(self) -> int:
            """The head's size in bytes as sent, give or take optional whitespace around header values."""
            request_line = len(self.parser.get_method()) + len(self.url) + len(b"  HTTP/1.1\r\n")
            return request_line + sum(len(name) + len(value) + 4 for name, value in self.headers) + 2

        def _refuse_large_head(self) -> None:
            self.logger.warning("Invalid HTTP request received: %s", TOO_LARGE)
            self.send_400_response(TOO_LARGE)
            self.head_deadline.stop()

        def _head_too_slow(self) -> None:
            if self.reading == "past" or self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                # The next head trickles in while this request is still being answered: its deadline runs
                # again from now rather than cutting the answer short.
                self.head_deadline.start()
                return
            _close_too_slow(self)

    HeaderDeadlineProtocol = HeaderDeadlineHttpToolsProtocol


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> ServeConfig:
    """The uvicorn configuration `shine serve` runs `app` with (`extra`: more of uvicorn's options)."""
    return ServeConfig(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        # JSON logs: uvicorn's loggers keep no handlers of their own and reach the root's JSON handler.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        loop="auto",  # uvloop (installed with Shine), else asyncio's own loop
        http=HeaderDeadlineProtocol,
        header_timeout=settings.header_timeout,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # the httptools protocol keeps the same limit
        limit_concurrency=settings.max_connections,
        backlog=min(2048, settings.max_connections),
        **extra,
    )


class FreezeAfterStartup:
    """Once the app has started, what start-up made (modules, tool schemas, the catalog, ~260 000 tracked
    objects) is moved out of the garbage collector's sight (`gc.freeze`): a full collection walked all of it,
    157-167 ms of a request's time about once every 1 600 tool calls, and now skips it. Only for `shine
    serve`'s own process: frozen objects are never collected, so a process that starts many apps (the
    tests) must not freeze each one's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def started_then_freeze(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            await send(message)

        await self.app(scope, receive, started_then_freeze)


def worker_app() -> Any:
    """The app factory each process of `shine serve --workers N` calls: a new interpreter, so settings come
    from the environment again (the parent put `--host`/`--port` there) and logging is set up again."""
    from web_shell.app import create_app

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return FreezeAfterStartup(create_app(settings))


ACCEPTED_GRACE_SECONDS = 0.25  # far more than a request takes to arrive on a connection just accepted


class DrainingServer(uvicorn.Server):
    """A worker's server that, told to stop, stops accepting first and then gives the connections it has just
    accepted a moment to deliver their request before uvicorn closes every connection without one. A request
    still unread when its connection closes is answered with a reset: once in a clean-clone test run, a
    SIGHUP's rolling restart lost a request that way."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(ACCEPTED_GRACE_SECONDS)
        await super().shutdown(sockets)


class Worker(Process):
    """uvicorn's worker process, serving with `DrainingServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's supervisor, with each worker on a listening socket of its own (`worker_sockets`): a worker
    that dies or is replaced hands its socket to its successor. And a worker that is gone has its live
    gauges (pool, breaker) removed from the metrics files, so `/metrics` stops showing a process that is gone.
    The number of workers is fixed (SIGTTIN and SIGTTOU are ignored): each has its own socket."""

    def __init__(self, config: uvicorn.Config, sockets: list[Any], metrics_dir: str) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir
        # `kill -USR1 <serve's pid>` asks every worker what it is doing (web_shell.task_dump).
        signal.signal(signal.SIGUSR1, lambda _sig, _frame: self._dump_workers())

    def _worker(self, index: int) -> Process:
        return Worker(self.config, [self.sockets[index % len(self.sockets)]])

    def _dump_workers(self) -> None:
        for process in self.processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGUSR1)

    def _forget_gone(self, before: set[int | None]) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                mark_process_dead(pid, self.metrics_dir)

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            process = self._worker(index)
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        """A worker that died or stopped answering the supervisor's ping is replaced on its socket; one that
        failed before it served (a broken app or address) stops `serve`, since every restart would too."""
        if self.should_exit.is_set():
            return
        before = {process.pid for process in self.processes}
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s failed to start: stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("worker %s died: starting another on its socket", process.pid)
            replacement = self._worker(index)
            replacement.start()
            self.processes[index] = replacement
        self._forget_gone(before)

    def restart_all(self) -> None:
        """SIGHUP: each worker replaced in turn, its successor serving before it is stopped."""
        before = {process.pid for process in self.processes}
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                break
            new = self._worker(index)
            new.start()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error("worker %s was not ready in time: keeping %s", new.pid, old.pid)
                break
            old.terminate()
            old.join()
            self.processes[index] = new
        self._forget_gone(before)

    def handle_ttin(self) -> None:
        log.info("SIGTTIN ignored: shine serve runs --workers N, each on a socket of its own")

    def handle_ttou(self) -> None:
        log.info("SIGTTOU ignored: shine serve runs --workers N, each on a socket of its own")


def worker_sockets(config: uvicorn.Config, count: int) -> list[socket.socket]:
    """`count` sockets bound to the same address with SO_REUSEPORT, one per worker: the kernel spreads new
    connections over them by their addresses. With one shared socket, the worker that woke first accepted
    every connection waiting, and a client that keeps its connection (an MCP client, a proxy's upstream
    pool) stayed where it landed: in a small load run all 11 clients were on one of two workers, and two
    workers did what one did. A socket listens once its worker starts; one whose worker died keeps its
    queue for the next."""
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    sockets: list[socket.socket] = []
    port = config.port
    for _ in range(count):
        sock = socket.socket(family=family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((config.host, port))
        except OSError as error:
            sock.close()
            for made in sockets:
                made.close()
            raise SystemExit(f"cannot listen on {config.host}:{port}: {error}") from error
        port = sock.getsockname()[1]  # port 0: the others take the port the first was given
        sock.set_inheritable(True)
        sockets.append(sock)
    log.info("listening on %s:%d, %d workers with a socket each", config.host, port, count)
    return sockets


def serve_workers(settings: Settings, workers: int) -> None:
    """Run `workers` processes, each on its own socket on the one port (`worker_sockets`), under uvicorn's
    supervisor, which restarts a worker that dies. Each has its own caches and MCP sessions; the database (PostgreSQL) is what they share.

    Metrics: each worker writes its counters to files in a fresh directory made here before the workers
    start (prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, read as each worker imports
    it), so `/metrics` on any worker counts the requests of all; the directory goes when `serve` ends."""
    metrics_dir = tempfile.mkdtemp(prefix="shine-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        config = uvicorn_config(f"{__name__}:worker_app", settings, factory=True, workers=workers)
        Supervisor(config, worker_sockets(config, workers), metrics_dir).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
