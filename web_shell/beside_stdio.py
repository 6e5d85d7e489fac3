"""`shine mcp`: the stdio server, with the web shell its links need running beside it.

A stdio session hands out links to web pages: the payment page of `checkout` (`/simulated-checkout/…`, or
the return pages after Stripe), order pages, "where to buy" click-outs. Those pages are the web shell's.
Unless SHINE_PUBLIC_URL names where an operator runs `shine serve` on the same database, `shine mcp`
serves the web shell itself: in the same process, on the same database (one `Services`), on a free
loopback port chosen at start, and every link it returns names that port. The socket listens before the
first message is read, so a link is good from the moment it is handed out.
"""

from __future__ import annotations

import logging
import socket

import anyio
import uvicorn

from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services

log = logging.getLogger("shine.stdio")


def loopback_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 and a port nobody else has."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP over stdin/stdout until the client closes it; with the web shell beside it when needed."""
    if settings.public_url:
        await build_server(settings).run_stdio_async()
        return

    from web_shell.app import create_app

    sock = loopback_socket()
    port = int(sock.getsockname()[1])
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "port": port})
    services = Services(settings)
    web = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services),
            log_config=None,  # stdout is the MCP protocol's: uvicorn logs through Shine's logging (stderr)
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    log.info("web pages for this session (payment, orders): %s", settings.base_url)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(web.serve, [sock])
            await build_server(settings, services).run_stdio_async()
            web.should_exit = True
    finally:
        sock.close()
