"""What tracing costs: the search benchmark's MCP tool calls (`bench_search.py`'s cases, same catalog) with
tracing off and with tracing on but no exporter, paired and interleaved in one process.

"On" is what `OTEL_EXPORTER_OTLP_ENDPOINT` turns on, minus the exporter: an SDK tracer provider that records
every span (the MCP SDK's `tools/call`, each database statement's) and drops it, plus the database hooks.
"Off" is a server without an endpoint: the MCP SDK's tracer is a no-op and no database hooks are installed.
The global tracer provider can be set only once per process, so it is a switch: one provider whose tracers
hand out real or no-op spans, and the database hooks added or removed with it. The two run in alternating
blocks of calls (A B B A …), each case in turn, so a slow spell of this shared machine hits both alike; the
overhead is the ratio of the medians, per case and over all calls.

Run: `.venv/bin/python benchmarks/bench_tracing.py [--products 50000] [--runs 600] [--block 20]`.
Target (issue 20): tracing on with no exporter costs < 5 % on the search tool call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracer, Tracer
from opentelemetry.util import types
from sqlalchemy import event
from sqlalchemy.engine import Engine

from benchmarks.bench_search import CASES, build_catalog_apart
from shine_mcp.tracing import DATABASE_HOOKS, configure_tracing

TARGET = 0.05


class SwitchedTracer(Tracer):
    """A tracer that starts the SDK's spans while its switch is on and no-op spans while it is off."""

    def __init__(self, switch: Switch, real: Tracer) -> None:
        self.switch, self.real, self.noop = switch, real, NoOpTracer()

    def _current(self) -> Tracer:
        return self.real if self.switch.on else self.noop

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._current().start_span(*args, **kwargs)

    @contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[Any]:  # type: ignore[override]
        with self._current().start_as_current_span(*args, **kwargs) as span:
            yield span


class Switch(TracerProvider):
    """The process's tracer provider: an SDK provider without span processors (spans are recorded, then
    dropped: tracing on, no exporter), switched on and off together with the database hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.on = True

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> Tracer:
        real = super().get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        return SwitchedTracer(self, real)

    def turn(self, on: bool) -> None:
        if on == self.on:
            return
        for name, hook in DATABASE_HOOKS:
            (event.listen if on else event.remove)(Engine, name, hook)
        self.on = on


async def paired(
    switch: Switch, calls: Sequence[Callable[[], Awaitable[object]]], runs: int, block: int
) -> list[dict[bool, list[float]]]:
    """Per call, `runs` timings (ms) with tracing off and on, in alternating blocks after a warm-up each."""
    samples: list[dict[bool, list[float]]] = [{False: [], True: []} for _ in calls]
    turn = 0
    while len(samples[0][True]) < runs:
        order = (False, True) if turn % 2 == 0 else (True, False)
        turn += 1
        for call, taken in zip(calls, samples, strict=True):
            for on in order:
                switch.turn(on)
                for _ in range(3):
                    await call()
                for _ in range(min(block, runs - len(taken[on]))):
                    started = time.perf_counter()
                    await call()
                    taken[on].append((time.perf_counter() - started) * 1000)
    return samples


async def measure(directory: Path, runs: int, block: int) -> list[dict[bool, list[float]]]:
    from mcp import Client

    from shine_mcp.config import Settings
    from shine_mcp.server import build_server
    from shine_mcp.services import Services

    switch = Switch()
    assert configure_tracing(switch)  # installs the database hooks; `turn` removes and adds them
    settings = Settings(data_dir=directory, database_url=None, load_demo_catalog=False)
    services = Services(settings)
    async with services.running(), Client(build_server(settings, services)) as client:
        calls: list[Callable[[], Awaitable[object]]] = []
        for _name, arguments, _filters, _sql in CASES:

            async def tool_call(arguments: dict[str, object] = arguments) -> object:
                result = await client.call_tool("search_products", arguments)
                assert not result.is_error, result.content
                return result

            calls.append(tool_call)
        return await paired(switch, calls, runs, block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=600, help="tool calls per search case, off and on each")
    parser.add_argument("--block", type=int, default=20, help="calls in a row before switching")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build_catalog_apart(Path(tmp), args.products)
        samples = asyncio.run(measure(Path(tmp), args.runs, args.block))
    print(f"search_products tool call on {args.products:,} products, {args.runs} calls per case off and on:")
    print(f"  {'case':28} {'off (median)':>13} {'on (median)':>12} {'overhead':>9}")
    for (name, *_rest), taken in zip(CASES, samples, strict=True):
        off, on = statistics.median(taken[False]), statistics.median(taken[True])
        print(f"  {name:28} {off:10.3f} ms {on:9.3f} ms {on / off - 1:+9.1%}")
    every_off = [t for taken in samples for t in taken[False]]
    every_on = [t for taken in samples for t in taken[True]]
    off, on = statistics.median(every_off), statistics.median(every_on)
    overhead = on / off - 1
    print(f"  {'all calls':28} {off:10.3f} ms {on:9.3f} ms {overhead:+9.1%}")
    print(f"  overhead {overhead:+.1%}  ·  target < {TARGET:.0%}: {'met' if overhead < TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
