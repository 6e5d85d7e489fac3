"""OpenTelemetry traces: an HTTP request → the MCP message it carries → database, Stripe, Firecrawl and model
spans beneath it. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OpenTelemetry's own variable; the
exporter reads its siblings such as `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_SERVICE_NAME` itself).

- HTTP: `TracingMiddleware` opens a server span per request, named by the route template (`POST /mcp`,
  `GET /p/{product_id}`), never the path itself, which can carry ids and emails.
- MCP: the MCP SDK wraps each message in its own span (`tools/call search_products`, with
  `mcp.method.name` and `gen_ai.tool.name`) once a tracer provider is set; nothing to add here.
- Database: a span per statement with the operation (`SELECT`) and the database system; never the
  statement's text or its parameters.
- Outbound HTTP (Stripe, Firecrawl, the Anthropic model): a client span per request with the method, the
  host, the service it belongs to and the status; never the path, query or body.
- Models: a span per ONNX inference with the graph's name.

Personal data stays out: no URLs, no SQL, no arguments, no user ids. The hooks are installed only when
tracing is on, so a server without an endpoint pays nothing for them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "shine"
ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICES_BY_HOST = {"stripe.com": "stripe", "firecrawl.dev": "firecrawl", "anthropic.com": "anthropic"}

_lock = threading.Lock()
_installed = False


def tracer() -> Tracer:
    return trace.get_tracer(TRACER_NAME)


def tracing_enabled() -> bool:
    return _installed


def configure_tracing(provider: Any | None = None) -> bool:
    """Turn tracing on for this process, once: with `provider` (tests, benchmarks) or, when
    `OTEL_EXPORTER_OTLP_ENDPOINT` is set, an SDK provider exporting by OTLP over HTTP in batches.
    Returns whether tracing is on."""
    global _installed
    with _lock:
        if _installed:
            return True
        if provider is None:
            if not os.environ.get(ENDPOINT_VARIABLE):
                return False
            provider = _otlp_provider()
        trace.set_tracer_provider(provider)
        _instrument_sqlalchemy()
        _instrument_httpx()
        _instrument_onnxruntime()
        _installed = True
        return True


def _otlp_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shine_mcp import __version__

    resource = Resource.create({"service.name": "shine", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def route_template(scope: Scope) -> str:
    """The matched route's template, or "unmatched": a span name without ids from the path."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path:
        return str(path)
    root = scope.get("root_path", "") + scope.get("path", "")
    return "/mcp" if root.startswith("/mcp") else "unmatched"


class TracingMiddleware:
    """A server span around each HTTP request (a no-op pass-through while tracing is off)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        configure_tracing()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _installed:
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # A caller that traces too (W3C `traceparent`) gets this request's span inside its own trace.
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        with tracer().start_as_current_span(
            f"{method} request",
            context=extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


# --- database -------------------------------------------------------------------------------------------
def _db_before(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    system = conn.engine.dialect.name
    span = tracer().start_span(
        f"db {operation}",
        kind=SpanKind.CLIENT,
        attributes={"db.system.name": system, "db.operation.name": operation},
    )
    conn.info.setdefault("shine_spans", []).append(span)


def _db_after(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    spans = conn.info.get("shine_spans")
    if spans:
        spans.pop().end()


def _db_failed(context: Any) -> None:
    spans = context.connection.info.get("shine_spans") if context.connection is not None else None
    if spans:
        span = spans.pop()
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", type(context.original_exception).__name__)
        span.end()


# The engine events a statement's span hangs on (every engine of the process: `sqlalchemy.engine.Engine`).
DATABASE_HOOKS = (
    ("before_cursor_execute", _db_before),
    ("after_cursor_execute", _db_after),
    ("handle_error", _db_failed),
)


def _instrument_sqlalchemy() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    for name, hook in DATABASE_HOOKS:
        event.listen(Engine, name, hook)


# --- outbound HTTP --------------------------------------------------------------------------------------
def service_of(host: str) -> str:
    for suffix, service in SERVICES_BY_HOST.items():
        if host == suffix or host.endswith("." + suffix):
            return service
    return "http"


@contextmanager
def _client_span(method: str, host: str) -> Iterator[Any]:
    service = service_of(host)
    with tracer().start_as_current_span(
        f"{service} {method}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "server.address": host, "peer.service": service},
    ) as span:
        yield span


def _instrument_httpx() -> None:
    # httpx2 is Shine's client (and the MCP SDK's and anthropic's); httpx is firecrawl-py's, which
    # FirecrawlAPIBrowser (integrations/firecrawl.py) uses where Node is not installed.
    import httpx
    import httpx2

    for module in (httpx2, httpx):
        async_transport: Any = module.AsyncHTTPTransport
        sync_transport: Any = module.HTTPTransport
        send_async, send_sync = async_transport.handle_async_request, sync_transport.handle_request

        async def traced_async(self: Any, request: Any, _send: Any = send_async) -> Any:
            with _client_span(request.method, request.url.host) as span:
                response = await _send(self, request)
                span.set_attribute("http.response.status_code", response.status_code)
                return response

        def traced_sync(self: Any, request: Any, _send: Any = send_sync) -> Any:
            with _client_span(request.method, request.url.host) as span:
                response = _send(self, request)
                span.set_attribute("http.response.status_code", response.status_code)
                return response

        async_transport.handle_async_request = traced_async
        sync_transport.handle_request = traced_sync


# --- models ---------------------------------------------------------------------------------------------
def _instrument_onnxruntime() -> None:
    import onnxruntime as ort

    session_class: Any = ort.InferenceSession
    run = session_class.run

    def traced_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(self, "_shine_model_name", None)
        if name is None:
            name = self._shine_model_name = self.get_modelmeta().graph_name or "model"
        with tracer().start_as_current_span(
            f"model {name}", kind=SpanKind.INTERNAL, attributes={"shine.model": name}
        ):
            return run(self, *args, **kwargs)

    session_class.run = traced_run
