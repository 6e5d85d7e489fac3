"""`create_app(settings)`: the web shell. Every route is listed here, Starlette style; `/mcp` goes last."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from agent.model import Model
from shine_mcp import __version__
from shine_mcp.auth.authority import Authority, Clock
from shine_mcp.auth.gate import FrontDoor
from shine_mcp.auth.hosts import transport_security
from shine_mcp.auth.identity import http_user_id
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from shine_mcp.store.catalog import count_products
from shine_mcp.store.purge import PurgeJob
from shine_mcp.store.stream_events import RETRY_INTERVAL_MS, DatabaseEventStore, StreamEventScope
from shine_mcp.tracing import TracingMiddleware
from web_shell import auth, chat, click_out, my_data, pages, payments, widget_sign_in
from web_shell.busy import BusyGuard
from web_shell.observability import Metrics, Observability, metrics_route
from web_shell.task_dump import ConnectionHolders, dump_on_signal

# A base64 selfie of 15 MB (the analysis intake cap) is ~20 MB of JSON; the SDK default is 4 MiB.
MAX_MCP_BODY_BYTES = 21 * 1024 * 1024


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
        # Kept in the database: a dropped stream resumes with Last-Event-ID (store/stream_events.py).
        event_store=DatabaseEventStore(services.db, clock=clock),
        retry_interval=RETRY_INTERVAL_MS,
    )

    metrics = Metrics()
    server.tool_observers.append(metrics.tool_call)
    metrics.watch(services)
    holders = ConnectionHolders()  # who holds each pooled connection, for SIGUSR1's dump
    services.observers.database.append(holders.watch)
    chat_service = chat.ChatService(services, authority, server, advisor_model)
    payments_web = payments.PaymentsWeb(services, webhook_outcome=metrics.webhook)

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
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        purge = PurgeJob(services.db, settings.purge_seconds, clock=clock)
        app.state.purge = purge  # tests follow its passes
        app.state.mcp_server = server  # tests register slow tools of their own (resumable streams)
        async with (
            services.running(),
            purge.running(),
            server.session_manager.run(),
            chat_service.running(),
            payments_web.running(),
        ):
            with dump_on_signal(holders):  # `kill -USR1 <pid>` logs every task's stack and the pool
                yield

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        metrics_route(settings, metrics),
        *auth.routes(services, authority),
        *widget_sign_in.routes(services, authority),
        *chat.routes(chat_service),
        *my_data.routes(services, server),
        *pages.routes(services),
        *click_out.routes(services),
        *payments_web.routes(),
        Mount("/", StreamEventScope(mcp_app, user_of=lambda scope: http_user_id(scope, settings))),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        # Observability outermost: every answer (a 503 from BusyGuard, a 421 or 429 from FrontDoor too) has a
        # request id and is counted. BusyGuard next: a database that stayed locked gives 503 + Retry-After.
        middleware=[
            Middleware(Observability, metrics=metrics),
            Middleware(TracingMiddleware),  # a span per request when OTEL_EXPORTER_OTLP_ENDPOINT is set
            Middleware(BusyGuard),
            Middleware(FrontDoor, authority=authority),
        ],
    )
