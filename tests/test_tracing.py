"""OpenTelemetry traces: an MCP tool call over HTTP gives one trace, HTTP request → MCP tool call → database
statements, named by route, MCP method and tool, with no personal data in it; the OTLP exporter sends to the
configured endpoint and nothing is set up without one."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shine_mcp.config import Settings
from tests.support.tracing import spans_into_memory
from web_shell.app import create_app

SECRET_QUERY = "jane.doe@example.com niacinamide"
REMOTE_SEARCH = """
import asyncio
from mcp import Client

async def main() -> None:
    async with Client("{url}") as client:
        result = await client.call_tool("search_products", {{"query": "{query}", "limit": 3}})
    print("error" if result.is_error else "ok")

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test process, into memory (the global provider can be set only once); the
    exporter keeps nothing after this module, so the tests that follow do not fill memory with spans."""
    memory = spans_into_memory()
    yield memory
    memory.shutdown()


@pytest.fixture
async def served(settings: Settings, exporter: InMemorySpanExporter) -> AsyncIterator[str]:
    """The app under uvicorn in this process, on a socket bound before it starts: requests wait for it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue in the backlog until the server accepts them
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with anyio.fail_after(30):
            await task
        sock.close()


def attributes_of(spans: list[ReadableSpan]) -> list[tuple[str, Any]]:
    return [(name, value) for span in spans for name, value in (span.attributes or {}).items()]


async def test_a_tool_call_over_http_is_one_trace_from_request_to_database(
    served: str, exporter: InMemorySpanExporter
) -> None:
    # A client in its own process, as a remote one is: no trace context of ours in its requests.
    code = REMOTE_SEARCH.format(url=f"{served}/mcp", query=SECRET_QUERY)
    answer = await asyncio.to_thread(run_python, code)
    assert answer == "ok"

    spans = list(exporter.get_finished_spans())
    tool = next(s for s in spans if s.name == "tools/call search_products")
    assert tool.attributes is not None
    assert tool.attributes["mcp.method.name"] == "tools/call"
    assert tool.attributes["gen_ai.tool.name"] == "search_products"
    in_trace = [s for s in spans if s.context.trace_id == tool.context.trace_id]
    http = [s for s in in_trace if s.name == "POST /mcp"]
    assert len(http) == 1 and http[0].parent is None, [s.name for s in in_trace]
    assert http[0].attributes and http[0].attributes["http.response.status_code"] == 200
    assert tool.parent is not None and tool.parent.span_id == http[0].context.span_id
    assert not [s.name for s in in_trace if s.name.startswith("initialize")]  # this request's trace
    database = [s for s in in_trace if s.name.startswith("db ")]
    assert database and {s.attributes["db.system.name"] for s in database if s.attributes} == {"sqlite"}
    assert "db SELECT" in {s.name for s in database}

    # Nothing the shopper typed, and no SQL, in any span of any trace.
    for _name, value in attributes_of(spans):
        assert "jane.doe" not in str(value) and "niacinamide" not in str(value)
        assert "FROM" not in str(value)


REMOTE_VIEW = """
import asyncio
from mcp import Client

async def main() -> None:
    async with Client("{url}") as client:
        found = await client.call_tool("search_products", {{"query": "cleanser", "limit": 1}})
        product_id = found.structured_content["products"][0]["id"]
        result = await client.call_tool("get_product", {{"product_id": product_id}})
    print("error" if result.is_error else "ok")

asyncio.run(main())
"""


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The names of `span`'s parents, nearest first, as far as the finished spans go."""
    by_id = {s.context.span_id: s for s in spans}
    names: list[str] = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        names.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    return names


async def test_a_write_queued_for_the_writer_thread_is_traced_under_its_tool_call(
    served: str, exporter: InMemorySpanExporter
) -> None:
    # get_product counts the view: an upsert run on SQLite's writer thread, not in the request's task.
    exporter.clear()
    assert await asyncio.to_thread(run_python, REMOTE_VIEW.format(url=f"{served}/mcp")) == "ok"

    spans = list(exporter.get_finished_spans())
    tool = next(s for s in spans if s.name == "tools/call get_product")
    writes = [s for s in spans if s.name == "db INSERT"]
    assert writes, [s.name for s in spans]
    # Every queued write (the view count, each request's rate-limit count) is inside its request's trace.
    assert all(ancestors(write, spans)[-1:] == ["POST /mcp"] for write in writes)
    (view,) = [w for w in writes if ancestors(w, spans) == ["tools/call get_product", "POST /mcp"]]
    assert view.context.trace_id == tool.context.trace_id


async def test_a_request_span_is_named_by_its_route_template_not_its_path(
    served: str, exporter: InMemorySpanExporter
) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        assert (await http.get("/healthz")).status_code == 200
        await http.get("/images/products/prd_b559697ee63c.svg")

    names = {s.name for s in exporter.get_finished_spans() if s.kind.name == "SERVER"}
    assert "GET /healthz" in names
    assert "GET /images/products/{product_id}.svg" in names, names
    assert not any("prd_b559697ee63c" in name for name in names)


async def test_outbound_http_gets_a_client_span_with_the_host_but_not_the_path(
    exporter: InMemorySpanExporter,
) -> None:
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        exporter.clear()
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{server.server_port}/orders/ord_123?email=a@b.c")
        assert response.status_code == 204
    finally:
        server.shutdown()
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "http GET"]
    assert span.attributes is not None
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["http.response.status_code"] == 204
    assert not any("ord_123" in str(v) or "a@b.c" in str(v) for _n, v in attributes_of([span]))


def test_a_model_inference_gets_a_span_named_after_its_graph(exporter: InMemorySpanExporter) -> None:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "tiny_adder",
        [value("a", TensorProto.FLOAT, [1]), value("b", TensorProto.FLOAT, [1])],
        [value("sum", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    exporter.clear()

    (total,) = session.run(None, {"a": np.array([1.0], np.float32), "b": np.array([2.0], np.float32)})

    assert total.tolist() == [3.0]
    (span,) = exporter.get_finished_spans()
    assert span.name == "model tiny_adder"
    assert span.attributes and span.attributes["shine.model"] == "tiny_adder"


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


EXPORT_ONE_SPAN = """
from opentelemetry import trace
from shine_mcp.tracing import configure_tracing, tracer
print(configure_tracing())
if trace.get_tracer_provider().__class__.__name__ == "TracerProvider":
    with tracer().start_as_current_span("checkout-span-for-the-collector"):
        pass
    trace.get_tracer_provider().force_flush()
"""


def run_python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_spans_are_exported_by_otlp_to_the_configured_endpoint(collector: str) -> None:
    assert run_python(EXPORT_ONE_SPAN, OTEL_EXPORTER_OTLP_ENDPOINT=collector) == "True"

    paths = [path for path, _ in Collector.received]
    assert paths == ["/v1/traces"]
    assert b"checkout-span-for-the-collector" in Collector.received[0][1]
    assert b"shine" in Collector.received[0][1]  # the service name


def test_without_an_endpoint_tracing_stays_off(collector: str) -> None:
    assert run_python(EXPORT_ONE_SPAN) == "False"
    assert Collector.received == []
