"""The advisor's own cost: loop overhead per turn, and the time from `POST /api/chat` to the first SSE event.

1. Loop overhead: a zero-latency scripted model asks for one `get_product` call and then answers, through
   the real loop, ToolBox and in-process MCP client on the demo catalog. Overhead per turn = the reply's
   total time minus the time spent inside the model and inside tool calls. Baseline in the same run: the
   same `get_product` called directly on the client.
2. First event: the real app served by uvicorn on loopback with the same zero-latency model; the time
   from sending `POST /api/chat` to reading the first complete SSE event. Baseline: `GET /healthz`.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_advisor.py [--turns N]`).
Targets (issue #7): overhead under 15 ms per turn; first event under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent import Advisor, Conversation, ToolBox  # noqa: E402
from agent.events import Event  # noqa: E402
from agent.model import Finish, Message, ModelEvent, TextChunk, ToolCall, ToolSpec  # noqa: E402
from shine_mcp.config import Settings  # noqa: E402
from shine_mcp.server import build_server  # noqa: E402
from tests.support.asgi import serve_asgi  # noqa: E402
from tests.support.postgres import free_port  # noqa: E402
from web_shell.app import create_app  # noqa: E402


class ZeroLatencyModel:
    """Calls get_product once, then answers; measures the time spent inside its own generator."""

    kind: Literal["scripted"] = "scripted"
    name = "zero-latency"

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        self.seconds = 0.0

    async def _events(self, messages: Sequence[Message]) -> AsyncIterator[ModelEvent]:
        last = messages[-1]["content"]
        if any(b.get("type") == "text" for b in last):
            yield ToolCall("call_0", "get_product", {"product_id": self.product_id})
            yield Finish("tool_use")
        else:
            yield TextChunk("Here it is.")
            yield Finish("end_turn")

    async def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        inner = self._events(messages)
        while True:
            started = time.perf_counter()
            try:
                event = await inner.__anext__()
            except StopAsyncIteration:
                self.seconds += time.perf_counter() - started
                return
            self.seconds += time.perf_counter() - started
            yield event


class TimedClient:
    """The MCP client, with the time spent in tool calls added up."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seconds = 0.0

    async def list_tools(self, *, cursor: str | None = None) -> Any:
        return await self.client.list_tools(cursor=cursor)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            return await self.client.call_tool(name, arguments, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


async def _ignore(_event: Event) -> None:
    return None


def _summary(label: str, samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    median = statistics.median(ordered) * 1000
    p95 = ordered[int(0.95 * (len(ordered) - 1))] * 1000
    print(f"  {label:<44} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    return median, p95


async def loop_overhead(settings: Settings, turns: int) -> float:
    server = build_server(settings)
    async with Client(server) as client:
        page = await client.call_tool("search_products", {"query": "", "limit": 1})
        product_id = page.structured_content["products"][0]["id"]
        direct: list[float] = []
        for _ in range(turns):
            started = time.perf_counter()
            await client.call_tool("get_product", {"product_id": product_id})
            direct.append(time.perf_counter() - started)

        overheads: list[float] = []
        totals: list[float] = []
        for i in range(turns + 10):
            model = ZeroLatencyModel(product_id)
            timed = TimedClient(client)
            advisor = Advisor(model, ToolBox(timed))  # a fresh ToolBox per turn, as the web shell makes one
            conversation = Conversation()
            started = time.perf_counter()
            await advisor.reply(conversation, "what's in it?", _ignore)
            total = time.perf_counter() - started
            if i >= 10:  # warm-up turns are not counted
                totals.append(total)
                overheads.append(total - model.seconds - timed.seconds)
    print(f"Loop overhead per turn ({turns} turns: one tool call and an answer, zero-latency model)")
    _summary("direct get_product call (baseline)", direct)
    _summary("whole turn through the advisor loop", totals)
    median, _ = _summary("loop overhead (total - model - tools)", overheads)
    print(
        f"  overhead / direct tool call: {median / (statistics.median(direct) * 1000):.2f}x   target: < 15 ms"
    )
    return median


def first_event(data_dir: Path, requests: int) -> float:
    port = free_port()
    settings = Settings(data_dir=data_dir, database_url=None, host="127.0.0.1", port=port)  # type: ignore[call-arg]

    async def product() -> str:
        async with Client(build_server(settings)) as client:
            page = await client.call_tool("search_products", {"query": "", "limit": 1})
            return str(page.structured_content["products"][0]["id"])

    product_id = asyncio.run(product())
    app = create_app(settings, advisor_model=ZeroLatencyModel(product_id))
    firsts: list[float] = []
    health: list[float] = []
    with serve_asgi(app, port) as url, httpx.Client(base_url=url, timeout=30) as client:
        for i in range(requests + 5):
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            elapsed = time.perf_counter() - started
            if i >= 5:
                health.append(elapsed)
            client.cookies.clear()  # each request is a new visitor: a guest session and a chat are created
            started = time.perf_counter()
            with client.stream("POST", "/api/chat", json={"message": "what's in it?"}) as response:
                lines = response.iter_lines()
                for line in lines:
                    if line == "":  # the end of the first event
                        elapsed = time.perf_counter() - started
                        break
                for _ in lines:  # let the reply finish before the next request
                    pass
            if i >= 5:
                firsts.append(elapsed)
    print(f"\nPOST /api/chat to the first SSE event ({requests} requests, new guest each time)")
    _summary("GET /healthz round trip (baseline)", health)
    median, _ = _summary("POST /api/chat -> first event", firsts)
    print(f"  first event / healthz: {median / (statistics.median(health) * 1000):.2f}x   target: < 100 ms")
    return median


def main() -> None:
    logging.disable(logging.WARNING)  # the server's start-up and request logs would drown the numbers
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shine-bench-advisor-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None)  # type: ignore[call-arg]
        overhead = asyncio.run(loop_overhead(settings, args.turns))
        first = first_event(Path(tmp), args.requests)
    ok = overhead < 15 and first < 100
    print(
        f"\n{'PASS' if ok else 'FAIL'}: overhead {overhead:.2f} ms (< 15), first event {first:.2f} ms (< 100)"
    )


if __name__ == "__main__":
    main()
