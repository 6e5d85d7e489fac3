"""Serve an ASGI app for real on a loopback port from a thread: the fakes of outside services and the tests
that need a running Shine share it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve_asgi(
    app: Any, port: int, *, certfile: Path | None = None, keyfile: Path | None = None
) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1:`port` from a thread (over TLS given a certificate and its key);
    yields its base URL; stops it afterwards."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    ready = threading.Event()
    server = _Server(config, ready)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not ready.wait(30) or not server.started:
        server.should_exit = True
        raise RuntimeError(f"the server on port {port} did not start")
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
