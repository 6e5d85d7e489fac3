"""Spans into memory for a test, whichever test turned tracing on first in this process."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shine_mcp.tracing import configure_tracing


def spans_into_memory() -> InMemorySpanExporter:
    """Tracing on for this process and a new in-memory exporter on its provider. The global provider can be
    set only once: a test that set its own provider with its exporter saw no spans once another test had set
    one first (the test order of the whole suite). Shut the exporter down when done: it then keeps nothing."""
    configure_tracing(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), provider
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory
