"""`create_app(settings)`: the web shell. Every route is listed here, Starlette style; `/mcp` goes last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from agent.model import Model
from shine_mcp import __version__
from shine_mcp.auth.authority import Authority, Clock
from shine_mcp.auth.gate import FrontDoor
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import count_products
from shine_mcp.store.tables import utcnow
from web_shell import auth, chat, my_data, pages, payments

# A base64 selfie of 15 MB (the analysis intake cap) is ~20 MB of JSON; the SDK default is 4 MiB.
MAX_MCP_BODY_BYTES = 21 * 1024 * 1024


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Loopback always; anything else only when the merchant names it (DNS-rebinding protection)."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for host in settings.allowed_hosts:
        hosts += [host, f"{host}:*"]
        origins += [f"https://{host}", f"http://{host}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    clock: Clock = utcnow,
    advisor_model: Model | None = None,
) -> Starlette:
    """`clock` is for tests of expiry (tokens, sessions, rate-limit windows); it defaults to the real time.
    `advisor_model` replaces the chat advisor's model (tests, benchmarks); by default it follows Settings."""
    settings = settings or Settings()
    services = services or Services(settings)
    authority = Authority(settings, services, clock=clock)
    server = build_server(settings, services, authority=authority)
    mcp_app = server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=transport_security(settings),
        max_request_body_size=MAX_MCP_BODY_BYTES,
    )

    chat_service = chat.ChatService(services, authority, server, advisor_model)
    payments_web = payments.PaymentsWeb(services)

    async def healthz(_request: Request) -> JSONResponse:
        products = await count_products(services.db)
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "catalog_products": products,
                "integrations": settings.integrations_summary(),
            }
        )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with (
            services.running(),
            server.session_manager.run(),
            chat_service.running(),
            payments_web.running(),
        ):
            yield

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *auth.routes(services, authority),
        *chat.routes(chat_service),
        *my_data.routes(services, server),
        *pages.routes(services),
        *payments_web.routes(),
        Mount("/", mcp_app),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, middleware=[Middleware(FrontDoor, authority=authority)]
    )
