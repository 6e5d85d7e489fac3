"""How `shine serve` runs the web shell under uvicorn: connection limits and the timeouts uvicorn lacks.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and caps header size
(`h11_max_incomplete_event_size`), but it never times out a connection that is slow to send a request's
headers: 800 such sockets stay open as long as their clients like. `HeaderDeadlineProtocol` is uvicorn's
own h11 protocol plus that deadline (`SHINE_HEADER_TIMEOUT`); `limit_concurrency`
(`SHINE_MAX_CONNECTIONS`) answers 503 past a number of open connections instead of holding them all.
Slow *bodies* are timed out where they are read (`web_shell.limits`). Behind a reverse proxy these
limits belong there too (nginx's `client_header_timeout`, `client_body_timeout`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from shine_mcp.config import Settings
from shine_mcp.logs import configure_logging

MAX_HEADER_BYTES = 16 * 1024  # h11's default, stated: a request head larger than this gets 400
KEEP_ALIVE_SECONDS = 5
TOO_SLOW = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class ServeConfig(uvicorn.Config):
    """uvicorn's Config with the one extra setting `HeaderDeadlineProtocol` reads."""

    def __init__(self, app: Any, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout


class HeaderDeadlineProtocol(H11Protocol):
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
        self.header_timeout: float = getattr(config, "header_timeout", 10.0)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._head_arrived()
        elif self.conn.their_state is h11.IDLE:  # part of a head, or the first bytes of the next one
            if self._head_deadline is None:
                self._await_head()
        else:
            self._head_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _head_arrived(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.debug(
                "closed a connection that sent no request head within %s s", self.header_timeout
            )
            self.transport.write(TOO_SLOW)
            self.transport.close()


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> ServeConfig:
    """The uvicorn configuration `shine serve` runs `app` with (`extra`: more of uvicorn's options)."""
    return ServeConfig(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        # JSON logs: uvicorn's loggers keep no handlers of their own and reach the root's JSON handler.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        http=HeaderDeadlineProtocol,
        header_timeout=settings.header_timeout,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=settings.max_connections,
        backlog=min(2048, settings.max_connections),
        **extra,
    )


def worker_app() -> Any:
    """The app factory each process of `shine serve --workers N` calls: a new interpreter, so settings come
    from the environment again (the parent put `--host`/`--port` there) and logging is set up again."""
    from web_shell.app import create_app

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, plus: a worker that died or was replaced has its live gauges (pool, breaker)
    removed from the metrics files, so `/metrics` stops showing a process that is gone."""

    def __init__(self, config: uvicorn.Config, sockets: list[Any], metrics_dir: str) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir

    def _forget_gone(self, before: set[int | None]) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                mark_process_dead(pid, self.metrics_dir)

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        self._forget_gone(before)

    def restart_all(self) -> None:
        before = {process.pid for process in self.processes}
        super().restart_all()
        self._forget_gone(before)


def serve_workers(settings: Settings, workers: int) -> None:
    """Run `workers` processes on one listening socket under uvicorn's supervisor, which restarts a worker
    that dies. Each has its own caches and MCP sessions; the database (PostgreSQL) is what they share.

    Metrics: each worker writes its counters to files in a fresh directory made here before the workers
    start (prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, read as each worker imports
    it), so `/metrics` on any worker counts the requests of all; the directory goes when `serve` ends."""
    metrics_dir = tempfile.mkdtemp(prefix="shine-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        config = uvicorn_config(f"{__name__}:worker_app", settings, factory=True, workers=workers)
        Supervisor(config, [config.bind_socket()], metrics_dir).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
