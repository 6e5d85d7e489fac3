"""What authorization costs a `/mcp` call: the same `tools/call` through the whole web shell (ASGI, no
sockets) on a keyless loopback setup vs with an OAuth access token, with and without rate limiting.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_auth.py [--calls N]`).
Target: authorization plus rate limiting adds at most 3 ms to a call (SQLite, one process): one indexed
read to verify the token and one upsert for the IP and user counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2

from benchmarks.load_support import access_token
from shine_mcp.config import Settings
from shine_mcp.services import Services
from web_shell.app import create_app

MODERN = "2026-07-28"
BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "get_account",
            "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": MODERN,
    "Mcp-Method": "tools/call",
    "Mcp-Name": "get_account",
}


async def _token(services: Services, settings: Settings) -> str:
    return await access_token(services.db, "bench@example.com", f"{settings.base_url}/mcp")


async def run(calls: int, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Every variant is served at once and measured in interleaved rounds, so machine noise hits all alike."""
    no_limits = {"rate_limit_ip": 0, "rate_limit_user": 0}
    limits = {"rate_limit_ip": 10**9, "rate_limit_user": 10**9}  # counted, never reached
    variants: dict[str, dict[str, Any]] = {
        "keyless loopback": no_limits,
        "keyless + rate limits": limits,
        "token": {"mcp_auth": "required", **no_limits},
        "token + rate limits": {"mcp_auth": "required", **limits},
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    async with AsyncExitStack() as stack:
        clients: dict[str, tuple[httpx2.AsyncClient, dict[str, str]]] = {}
        for name, overrides in variants.items():
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            settings = Settings(data_dir=Path(tmp), database_url=None, load_demo_catalog=False, **overrides)
            services = Services(settings)
            app = create_app(settings, services)
            await stack.enter_async_context(app.router.lifespan_context(app))
            headers = dict(HEADERS)
            if "mcp_auth" in overrides:
                headers["Authorization"] = f"Bearer {await _token(services, settings)}"
            transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50000))
            http = await stack.enter_async_context(
                httpx2.AsyncClient(transport=transport, base_url=settings.base_url)
            )
            clients[name] = (http, headers)
            for _ in range(20):  # warm up
                response = await http.post("/mcp", headers=headers, content=BODY)
                assert response.status_code == 200, response.text
        for _ in range(rounds):
            for name, (http, headers) in clients.items():
                for _ in range(calls // rounds):
                    started = time.perf_counter()
                    response = await http.post("/mcp", headers=headers, content=BODY)
                    timings[name].append(time.perf_counter() - started)
                    assert response.status_code == 200
    return {
        name: {"median_ms": statistics.median(t) * 1000, "p95_ms": sorted(t)[int(len(t) * 0.95)] * 1000}
        for name, t in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    results = asyncio.run(run(args.calls))
    base = results["keyless loopback"]["median_ms"]
    print(f"/mcp tools/call get_account through the web shell, {args.calls} calls each")
    print(f"  {'':24} {'median':>9} {'p95':>9} {'added':>9} {'ratio':>6}")
    for name, numbers in results.items():
        median = numbers["median_ms"]
        print(
            f"  {name:24} {median:6.2f} ms {numbers['p95_ms']:6.2f} ms {median - base:6.2f} ms {median / base:5.2f}x"
        )


if __name__ == "__main__":
    main()
