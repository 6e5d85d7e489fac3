"""Shine under load on its embedded SQLite database: `shine serve` in a subprocess on a loopback port, chat
shoppers on the web widget's API (`POST /api/chat`, Server-Sent Events, one guest each) and MCP clients
(`search_products`, `get_product`, `add_to_cart` over Streamable HTTP) all at once.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_load_sqlite.py [--chat 50] [--mcp 50] [--seconds 30]`).
Target: no HTTP 500 (a busy server answers 429/503 with Retry-After), and no lost turn: every reply a
shopper saw complete is stored (the `version` of each chat counts its saves). Rate limits stay on with a
high ceiling, so every request still writes its counter. Latencies are p50/p95 per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from mcp import Client

from benchmarks.lean_http import HttpError, LeanHttp, LeanMcp, sse_events

SHINE = str(Path(sys.executable).parent / "shine")
MESSAGES = [
    "find a moisturiser for dry skin under $30",
    "show me serums",
    "what's in the first one?",
    "a fragrance-free sunscreen for sensitive skin",
    "something with niacinamide for oily skin",
]
QUERIES = ["niacinamide serum", "sunscreen", "moisturiser for dry skin", "retinol", "cleanser"]
ACCESS_LINE = re.compile(r'"(?:GET|POST|DELETE|OPTIONS|PUT) \S+ HTTP/[\d.]+" (\d{3})')
MAX_RETRY_WAIT = 5.0  # seconds a client honours of a Retry-After


@dataclass
class LoadReport:
    statuses: Counter[int] = field(default_factory=Counter)  # every HTTP answer, from the server's access log
    chat_statuses: Counter[int] = field(default_factory=Counter)  # what POST /api/chat answered
    replies_shown: int = 0  # streams that showed reply text (complete or not)
    replies_completed: int = 0  # streams that ended with `done` and no error: what shoppers saw in full
    replies_told_not_saved: int = 0  # streams that said the reply could not be saved
    chat_errors: Counter[str] = field(default_factory=Counter)  # error events and client-side failures
    mcp_ok: Counter[str] = field(default_factory=Counter)
    mcp_errors: Counter[str] = field(default_factory=Counter)
    mcp_refused: Counter[str] = field(default_factory=Counter)  # answers a shopper could act on (stock)
    timings: dict[str, list[float]] = field(default_factory=dict)
    turns_stored: int = 0  # saves recorded in the SQLite file afterwards
    chats_stored: int = 0
    locked_in_log: int = 0  # "database is locked" lines in the server's output
    tracebacks_in_log: int = 0

    def time(self, operation: str, seconds: float) -> None:
        self.timings.setdefault(operation, []).append(seconds)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

    @property
    def lost_turns(self) -> int:
        """Replies a shopper saw that were neither stored nor reported as not saved."""
        return max(0, self.replies_shown - self.replies_told_not_saved - self.turns_stored)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _env(data_dir: Path, port: int) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SHINE_", "DATABASE_URL", "ANTHROPIC_"))}
    return {
        **keep,
        "SHINE_DATA_DIR": str(data_dir),
        "SHINE_HOST": "127.0.0.1",
        "SHINE_PORT": str(port),
        # Limits stay on (each request writes its counter) but one loopback IP must not be refused.
        "SHINE_RATE_LIMIT_IP": "10000000",
        "SHINE_RATE_LIMIT_USER": "10000000",
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def shine_serve(data_dir: Path, shine: str = SHINE) -> Iterator[tuple[str, Path]]:
    """`shine serve` on a free loopback port; yields its URL and the file its output goes to."""
    port = _free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [shine, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_env(data_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"shine serve exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("shine serve did not become healthy within 120 s")
                time.sleep(0.2)
            yield base, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _retry_wait(retry_after: str | None) -> None:
    retry_after = retry_after or "1"
    await asyncio.sleep(min(MAX_RETRY_WAIT, float(retry_after) if retry_after.isdigit() else 1.0))


async def chat_shopper(base: str, number: int, deadline: float, report: LoadReport) -> None:
    """One shopper in one browser: messages one after another, each reply read to its end. The guest's
    cookies are kept as a browser keeps them."""
    async with LeanHttp(base) as http:
        turn = number
        while time.monotonic() < deadline:
            turn += 1
            started = time.perf_counter()
            events: list[tuple[str, dict[str, Any]]] = []
            body = json.dumps({"message": MESSAGES[turn % len(MESSAGES)]}).encode()
            try:
                response, chunks = await http.stream(
                    "POST", "/api/chat", body, {"content-type": "application/json"}
                )
                report.chat_statuses[response.status] += 1
                if response.status != 200:
                    async for _chunk in chunks:
                        pass
                    report.chat_errors[f"http {response.status}"] += 1
                    if response.status in (429, 503):
                        await _retry_wait(response.headers.get("retry-after"))
                    continue
                async for name, data in sse_events(chunks):
                    events.append((name, json.loads(data)))
                    if name == "done":
                        break
                async for _chunk in chunks:  # the stream's end, so the connection can be kept
                    pass
            except (HttpError, TimeoutError, asyncio.IncompleteReadError) as error:
                report.chat_errors[type(error).__name__] += 1
                await http.close()
                continue
            report.time("chat reply (whole stream)", time.perf_counter() - started)
            errors = [data.get("code", "?") for name, data in events if name == "error"]
            if any(name == "text" for name, _ in events):
                report.replies_shown += 1
            for code in errors:
                report.chat_errors[f"event {code}"] += 1
            if "not_saved" in errors:
                report.replies_told_not_saved += 1
            elif not errors and events and events[-1][0] == "done":
                report.replies_completed += 1
            elif not events or events[-1][0] != "done":
                report.chat_errors["stream ended without done"] += 1


class ToolCaller(Protocol):
    """The SDK's `Client` or the lean one (`lean_http.LeanMcp`): both answer with these attributes."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any: ...


def mcp_client(
    url: str, kind: str = "lean", token: str | None = None
) -> AbstractAsyncContextManager[ToolCaller]:
    """`lean`: the benchmark's own client, ~0.3 ms of CPU a call; `sdk`: the MCP SDK's, ~3.5 ms (it also
    re-validates each result against the tool's output schema), CPU the server then cannot have. `token`:
    an OAuth access token, sent as a signed-in client sends it."""
    if kind == "lean":
        return cast(AbstractAsyncContextManager[ToolCaller], LeanMcp(url, token=token))
    if token is None:
        return cast(AbstractAsyncContextManager[ToolCaller], Client(url))
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    return cast(
        AbstractAsyncContextManager[ToolCaller], Client(streamable_http_client(url, http_client=http))
    )


async def timed_call(
    client: ToolCaller,
    report: LoadReport,
    tool: str,
    arguments: dict[str, Any],
    refusals: tuple[str, ...] = (" in stock",),
) -> dict[str, Any] | None:
    """Call one tool, time it and count the outcome in `report`; a tool error whose text holds one of
    `refusals` is a refusal a shopper could act on (every anonymous loopback client shares one cart, so it
    can outgrow stock), not an error. Returns the structured result, or None when it did not succeed."""
    started = time.perf_counter()
    try:
        result = await client.call_tool(tool, arguments)
    except Exception as error:  # a transport failure: what the load did to this client
        report.mcp_errors[f"{tool}: {type(error).__name__}: {str(error)[:80]}"] += 1
        return None
    report.time(f"mcp {tool}", time.perf_counter() - started)
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        if any(hint in text for hint in refusals):
            report.mcp_refused[tool] += 1
        else:
            report.mcp_errors[f"{tool}: tool error: {text[:100]}"] += 1
        return None
    report.mcp_ok[tool] += 1
    return result.structured_content or {}


async def mcp_shopper(base: str, number: int, deadline: float, report: LoadReport) -> None:
    """One MCP client: search, open a product, put it in the cart; again and again."""

    async def call(client: ToolCaller, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        return await timed_call(client, report, tool, arguments)

    try:
        async with mcp_client(f"{base}/mcp") as client:
            turn = number
            while time.monotonic() < deadline:
                turn += 1
                page = await call(
                    client, "search_products", {"query": QUERIES[turn % len(QUERIES)], "limit": 5}
                )
                products = (page or {}).get("products") or []
                if not products:
                    continue
                product_id = products[turn % len(products)]["id"]
                if await call(client, "get_product", {"product_id": product_id}) is None:
                    continue
                await call(client, "add_to_cart", {"product_id": product_id, "quantity": 1})
    except Exception as error:
        report.mcp_errors[f"session: {type(error).__name__}: {str(error)[:80]}"] += 1


def _read_back(data_dir: Path, log_path: Path, report: LoadReport) -> None:
    with closing(sqlite3.connect(data_dir / "shine.db")) as connection:
        turns, chats = connection.execute(
            "SELECT COALESCE(SUM(version), 0), COUNT(*) FROM chat_sessions"
        ).fetchone()
    report.turns_stored, report.chats_stored = int(turns), int(chats)
    text = log_path.read_text(errors="replace")
    report.statuses.update(int(status) for status in ACCESS_LINE.findall(text))
    report.locked_in_log = text.count("database is locked")
    report.tracebacks_in_log = text.count("Traceback (most recent call last)")


async def _drive(base: str, chat_clients: int, mcp_clients: int, seconds: float, report: LoadReport) -> None:
    deadline = time.monotonic() + seconds
    tasks = [chat_shopper(base, n, deadline, report) for n in range(chat_clients)]
    tasks += [mcp_shopper(base, n, deadline, report) for n in range(mcp_clients)]
    # Replies in flight at the deadline are read to their end; the bound covers a stuck server.
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 180)


def run_load(
    chat_clients: int, mcp_clients: int, seconds: float, data_dir: Path, shine: str = SHINE
) -> LoadReport:
    """Serve Shine from `data_dir` (a fresh directory gets the demo catalog), load it, read the file back."""
    report = LoadReport()
    with shine_serve(data_dir, shine) as (base, log_path):
        asyncio.run(_drive(base, chat_clients, mcp_clients, seconds, report))
    _read_back(data_dir, log_path, report)
    return report


def print_report(report: LoadReport, chat_clients: int, mcp_clients: int, seconds: float) -> None:
    print(f"SQLite under load: {chat_clients} chat shoppers + {mcp_clients} MCP clients for {seconds:.0f} s")
    print(f"  {'operation':28} {'count':>6} {'p50':>9} {'p95':>9}")
    for operation, values in sorted(report.timings.items()):
        print(
            f"  {operation:28} {len(values):6d} {_percentile(values, 0.5) * 1000:6.0f} ms "
            f"{_percentile(values, 0.95) * 1000:6.0f} ms"
        )
    print(f"  HTTP statuses (server log): {dict(sorted(report.statuses.items()))}")
    print(f"  POST /api/chat statuses: {dict(sorted(report.chat_statuses.items()))}")
    print(
        f"  replies shown {report.replies_shown}, completed {report.replies_completed}, "
        f"turns stored {report.turns_stored} "
        f"in {report.chats_stored} chats, told 'not saved' {report.replies_told_not_saved}, "
        f"lost {report.lost_turns}"
    )
    print(f"  MCP calls ok: {dict(report.mcp_ok)}")
    print(
        f"  MCP errors: {dict(report.mcp_errors) or 0}; refused (out of stock): {dict(report.mcp_refused) or 0}"
    )
    print(f"  chat errors: {dict(report.chat_errors) or 0}")
    print(f"  server log: {report.locked_in_log} 'database is locked', {report.tracebacks_in_log} tracebacks")
    verdict = "OK" if report.server_errors == 0 and report.lost_turns == 0 else "FAILED"
    print(f"  target 0 HTTP 500 and 0 lost turns: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chat", type=int, default=50, help="chat shoppers")
    parser.add_argument("--mcp", type=int, default=50, help="MCP clients")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--shine", default=SHINE, help="the `shine` command to serve (e.g. another checkout's)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shine-load-") as directory:
        report = run_load(args.chat, args.mcp, args.seconds, Path(directory), args.shine)
    print_report(report, args.chat, args.mcp, args.seconds)
    if report.server_errors or report.lost_turns:
        sys.exit(1)


if __name__ == "__main__":
    main()
