"""Request ids and Prometheus metrics for the web shell: one ASGI middleware and the `/metrics` route.

Every response carries `X-Request-Id` (the proxy's when well formed, else a new one), and so does every
log line written while the request runs (`shine_mcp.logs`). `Metrics` counts requests per route template
(never the raw path, so labels stay few), their latencies and statuses, tool calls per tool and outcome,
webhook outcomes, skin analyses and their failed photo checks, the Firecrawl circuit breaker's state and
the database pool's use.

Under `shine serve --workers N` every worker writes its values to files in `PROMETHEUS_MULTIPROC_DIR`
(prometheus_client's multiprocess mode, which `shine serve` sets up before the workers start), and
`/metrics`, whichever worker answers it, reads them all: counters and histograms summed over the workers,
per-worker gauges (pool, breaker) labelled with the worker's `pid`.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import event
from sqlalchemy.pool import QueuePool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shine_mcp.auth.policy import is_local_request
from shine_mcp.config import Settings
from shine_mcp.logs import accepted_request_id, request_id
from shine_mcp.observers import BreakerState

if TYPE_CHECKING:
    from shine_mcp.services import Services
    from shine_mcp.store.db import Database

log = logging.getLogger("shine.metrics")

REQUEST_ID_HEADER = "x-request-id"
UNMATCHED = "unmatched"  # every path no route claims (scanners, typos) shares one label
# Seconds: from a cached search (ms) to a skin analysis or a chat turn (s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own; `shine serve` sets it
BREAKER_VALUES: dict[BreakerState, int] = {"closed": 0, "open": 1, "half_open": 2}


def multiprocess_directory() -> str | None:
    """Where the workers of `shine serve --workers N` write their values; None in a single process."""
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


class Metrics:
    """The counters of one process, in a registry of its own (one per app, so tests never share one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shine_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "shine_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "shine_http_requests_in_flight",
            "Requests being answered now (all workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.worker_requests = Counter(
            "shine_worker_http_requests",
            "HTTP requests answered, by worker process: how evenly the workers share the load.",
            ["worker"],
            registry=self.registry,
        )
        self.worker = str(os.getpid())
        self.tool_calls = Counter(
            "shine_tool_calls",
            "MCP tool calls, by tool and outcome (ok, tool_error: the caller can fix it, error: a crash).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_seconds = Histogram(
            "shine_tool_call_duration_seconds",
            "Time a tool call took, by tool.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.webhooks = Counter(
            "shine_webhook_events",
            "Payment webhooks, by outcome: applied, duplicate, ignored, unknown_order, rejected (bad "
            "signature), failed (not stored; the sender retries), unverifiable (no webhook secret set).",
            ["outcome"],
            registry=self.registry,
        )

        self.analyses = Counter(
            "shine_skin_analyses",
            "Skin analyses, by outcome: reported, or the code a refused photo got (no_face, too_dark, ...).",
            ["outcome"],
            registry=self.registry,
        )
        self.failed_gates = Counter(
            "shine_skin_failed_photo_checks",
            "Photo checks (gates) that failed in reported analyses, by check.",
            ["gate"],
            registry=self.registry,
        )
        self.breaker = Gauge(
            "shine_firecrawl_breaker_state",
            "The Firecrawl circuit breaker in this worker: 0 closed, 1 open (calls refused), 2 half-open (one "
            "probe call let through).",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.pool_size = Gauge(
            "shine_db_pool_size",
            "Connections the database pool keeps (pool size, without overflow), per worker.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.pool_checked_out = Gauge(
            "shine_db_pool_checked_out",
            "Database connections in use (checked out of the pool), per worker.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.pool_overflow = Gauge(
            "shine_db_pool_overflow",
            "Connections open beyond the pool size (overflow in use), per worker.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

    def watch(self, services: Services) -> None:
        """Listen to the outcomes `services` reports: analyses, the breaker, the database pool."""
        services.observers.analysis.append(self.analysis)
        services.observers.breaker.append(self.breaker_state)
        services.observers.database.append(self.watch_pool)

    def analysis(self, outcome: str, failed_gates: list[str]) -> None:
        self.analyses.labels(outcome).inc()
        for gate in failed_gates:
            self.failed_gates.labels(gate).inc()

    def breaker_state(self, state: BreakerState) -> None:
        self.breaker.set(BREAKER_VALUES[state])

    def watch_pool(self, db: Database) -> None:
        """Keep the pool gauges current as connections are checked out and in (a queue pool: SQLite in
        memory has a single static connection and nothing to show)."""
        pool = db.engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return
        self.pool_size.set(pool.size())

        def changed(*_args: Any) -> None:
            self.pool_checked_out.set(pool.checkedout())
            self.pool_overflow.set(max(0, pool.overflow()))

        changed()
        event.listen(pool, "checkout", changed)
        event.listen(pool, "checkin", changed)

    def webhook(self, outcome: str) -> None:
        self.webhooks.labels(outcome).inc()

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        """The observer `ShineServer` calls after each tool call."""
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_seconds.labels(tool).observe(seconds)
        log.debug("tool %s: %s in %.1f ms", tool, outcome, seconds * 1000)

    def exposition(self) -> bytes:
        directory = multiprocess_directory()
        if directory is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=directory)
        return generate_latest(every_worker)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (`/orders/{order_id}`), never the raw path."""
    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    if isinstance(route, Mount):
        return (route.path or "") + "/{path}"
    return UNMATCHED


class Observability:
    """ASGI middleware, outermost: the request id on the request (for the handlers behind), the response
    and the log context, then the request's route, status and latency into `Metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = [value for name, value in scope["headers"] if name == REQUEST_ID_HEADER.encode()]
        rid = accepted_request_id(offered[0].decode("latin-1") if len(offered) == 1 else None)
        if offered != [rid.encode()]:  # handlers behind (and tool calls) read the id we answer with
            others = [(name, value) for name, value in scope["headers"] if name != REQUEST_ID_HEADER.encode()]
            scope = {**scope, "headers": [*others, (REQUEST_ID_HEADER.encode(), rid.encode())]}
        status = 500  # an exception before the response started: ServerErrorMiddleware answers 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        token = request_id.set(rid)
        self.metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.in_flight.dec()
            request_id.reset(token)
            route, method = route_template(scope), scope.get("method", "GET")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.worker_requests.labels(self.metrics.worker).inc()
            self.metrics.request_seconds.labels(route, method).observe(elapsed)


def metrics_route(settings: Settings, metrics: Metrics) -> Route:
    """`GET /metrics` in Prometheus' text format: to direct loopback requests, or with
    `Authorization: Bearer <SHINE_METRICS_TOKEN>` from anywhere. Others get 404, as if it were not there."""
    secret = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else ""
    token = secret.encode() if secret else None  # an empty setting is no token, never a match for ""

    async def serve_metrics(request: Request) -> Response:
        client = request.client.host if request.client else None
        offered = request.headers.get("authorization", "")
        bearer = offered[7:].strip().encode() if offered[:7].lower() == "bearer " else b""
        allowed = is_local_request(client, request.headers) or (
            token is not None and hmac.compare_digest(bearer, token)
        )
        if not allowed:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", serve_metrics, methods=["GET"])
