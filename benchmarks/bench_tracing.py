"""What tracing costs: the search benchmark's MCP tool calls (`bench_search.py`'s cases, same catalog) with
tracing off and with tracing on but no exporter (an SDK tracer provider that records every span: the MCP
SDK's, the database statements', and drops them). The global tracer provider can be set only once per
process, so each measurement is a process of its own, off and on in turns, and the medians are compared.

Run: `.venv/bin/python benchmarks/bench_tracing.py [--products 50000] [--runs 300] [--rounds 3]`.
Target (issue 20): tracing on with no exporter costs < 5 % on the search tool call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_search import CASES, build_catalog_apart, timed_in_turns

TARGET = 0.05


async def measure(directory: Path, tracing: bool, runs: int) -> list[float]:
    from mcp import Client

    from shine_mcp.config import Settings
    from shine_mcp.server import build_server
    from shine_mcp.services import Services

    if tracing:
        from opentelemetry.sdk.trace import TracerProvider

        from shine_mcp.tracing import configure_tracing

        assert configure_tracing(TracerProvider())  # every span recorded, none exported
    settings = Settings(data_dir=directory, database_url=None, load_demo_catalog=False)
    services = Services(settings)
    samples: list[float] = []
    async with services.running(), Client(build_server(settings, services)) as client:
        calls: list[Callable[[], Awaitable[object]]] = []
        for _name, arguments, _filters, _sql in CASES:

            async def tool_call(arguments: dict[str, object] = arguments) -> object:
                result = await client.call_tool("search_products", arguments)
                assert not result.is_error, result.content
                return result

            calls.append(tool_call)
        for taken in await timed_in_turns(calls, runs):
            samples.extend(taken)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=300, help="tool calls per search case and process")
    parser.add_argument("--rounds", type=int, default=3, help="processes each of off and on, in turns")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # a child process: the catalog directory
    parser.add_argument("--tracing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measure(Path(args.measure), args.tracing, args.runs))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        build_catalog_apart(Path(tmp), args.products)
        medians: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for tracing in (False, True):
                command = [sys.executable, __file__, "--measure", tmp, "--runs", str(args.runs)]
                out = subprocess.run(
                    command + (["--tracing"] if tracing else []), check=True, capture_output=True, text=True
                ).stdout
                medians[tracing].append(statistics.median(json.loads(out.strip().splitlines()[-1])))
    off, on = statistics.median(medians[False]), statistics.median(medians[True])
    overhead = on / off - 1
    print(f"search tool call on {args.products} products, median of {args.rounds} processes each:")
    print(
        f"  tracing off:                {off:.3f} ms  (per process: {', '.join(f'{m:.3f}' for m in medians[False])})"
    )
    print(
        f"  tracing on, no exporter:    {on:.3f} ms  (per process: {', '.join(f'{m:.3f}' for m in medians[True])})"
    )
    print(f"  overhead {overhead:+.1%}  ·  target < {TARGET:.0%}: {'met' if overhead < TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
