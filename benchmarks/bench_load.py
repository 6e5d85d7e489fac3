"""Shine under a mixed shopper workload, on one worker on SQLite and on 1, 2 and 4 workers on PostgreSQL.

Each configuration is `shine serve --workers N` in its own processes on a loopback port (PostgreSQL: a
throwaway cluster started here, as the tests do). At once, for `--seconds`:
- chat shoppers on the web widget's API (`POST /api/chat`, the offline advisor, one guest each);
- MCP clients: `search_products`, `get_product`, `recommend_products`, `add_to_cart`, and every few rounds
  `checkout` (the simulated gateway: an order and a payment link);
- webhook senders: `checkout.session.completed` events for pending orders, signed as the simulated gateway
  (and Stripe) sign them, to `/stripe/webhook`.
Then a webhook burst alone (`--burst` events, 8 senders): events/s. Afterwards the database is read back:
every order checkout acknowledged, every turn a shopper saw and every event acknowledged as applied must be
stored ("lost writes"). The load generator's own CPU comes from /proc/self/stat; it shares the machine's
cores with the server, so its share is printed next to the throughput.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_load.py [--seconds 20] [--chat 8] [--mcp 16]
[--webhooks 2] [--burst 1000] [--workers 1,2,4] [--no-sqlite]`).
Targets: 0 errors and 0 lost writes everywhere; PostgreSQL 2 workers ≥ 1.6× 1 worker; webhooks ≥ 500/s
with 2 workers on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from mcp import Client

from benchmarks.bench_load_sqlite import (
    ACCESS_LINE,
    QUERIES,
    LoadReport,
    _percentile,
    chat_shopper,
    timed_call,
)
from benchmarks.load_support import (
    SHINE,
    Served,
    completed_event,
    cpu_seconds,
    postmaster_pid,
    prepare_store,
    read_back,
    settings_for,
    shine_serve,
    tree_cpu_seconds,
)

CHECKOUT_EVERY = 4  # an MCP client checks out its cart every this many rounds
BURST_SENDERS = 8
SCALING_TARGET = 1.6
WEBHOOK_TARGET = 500.0


@dataclass
class MixedReport:
    """One configuration's run: `load` holds the chat side and per-operation timings (shared shape with
    `bench_load_sqlite`); the rest is the MCP, webhook and read-back side."""

    label: str
    seconds: float
    load: LoadReport = field(default_factory=LoadReport)
    orders_acknowledged: set[str] = field(default_factory=set)
    events_acknowledged: set[str] = field(default_factory=set)
    webhook_orders: set[str] = field(default_factory=set)
    webhook_errors: Counter[str] = field(default_factory=Counter)
    burst_events: int = 0
    burst_seconds: float = 0.0
    generator_cpu: float = 0.0  # seconds of CPU the load generator took during the mixed phase
    server_cpu: float = 0.0
    database_cpu: float | None = None  # PostgreSQL's processes, when it runs on this machine
    orders_stored: int = 0
    events_stored: int = 0
    paid_orders: int = 0

    @property
    def operations(self) -> int:
        return sum(len(values) for name, values in self.load.timings.items() if not name.startswith("burst"))

    @property
    def requests_per_second(self) -> float:
        return self.operations / self.seconds

    @property
    def webhooks_per_second(self) -> float:
        return self.burst_events / self.burst_seconds if self.burst_seconds else 0.0

    @property
    def errors(self) -> int:
        load = self.load
        return (
            load.server_errors
            + sum(load.chat_errors.values())
            + sum(load.mcp_errors.values())
            + sum(self.webhook_errors.values())
            + load.tracebacks_in_log
        )

    @property
    def lost_orders(self) -> int:
        return len(self.orders_acknowledged) - self.orders_stored

    @property
    def lost_events(self) -> int:
        # An event acknowledged as applied must be recorded and its order paid.
        return len(self.events_acknowledged) - min(self.events_stored, self.paid_orders)

    @property
    def lost_writes(self) -> int:
        return self.lost_orders + self.lost_events + self.load.lost_turns


# Refusals a shopper could act on: stock (one shared cart), a price that changed, an empty cart.
MIXED_REFUSALS = (" in stock", "price", "changed", "empty")


async def mcp_shopper(base: str, number: int, deadline: float, report: MixedReport) -> None:
    """One MCP client: search, open a product, ask for recommendations, add to the cart; check out now
    and then. Refusals a shopper could act on (stock, a price that changed) are counted, not errors."""
    load = report.load

    async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        return await timed_call(client, load, tool, arguments, MIXED_REFUSALS)

    try:
        async with Client(f"{base}/mcp") as client:
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
                await call(
                    client, "recommend_products", {"concerns": ["acne"], "skin_type": "oily", "limit": 5}
                )
                await call(client, "add_to_cart", {"product_id": product_id, "quantity": 1})
                if turn % CHECKOUT_EVERY == 0:
                    done = await call(client, "checkout", {})
                    order = ((done or {}).get("order") or {}).get("order_id")
                    if order:
                        report.orders_acknowledged.add(order)
    except Exception as error:
        load.mcp_errors[f"session: {type(error).__name__}: {str(error)[:80]}"] += 1


async def webhook_sender(
    http: httpx.AsyncClient,
    events: asyncio.Queue[tuple[str, str, bytes, str]],
    report: MixedReport,
    operation: str,
    deadline: float | None = None,
) -> None:
    while not events.empty() and (deadline is None or time.monotonic() < deadline):
        order_id, event_id, payload, signature = events.get_nowait()
        report.webhook_orders.add(order_id)
        started = time.perf_counter()
        try:
            response = await http.post(
                "/stripe/webhook", content=payload, headers={"Stripe-Signature": signature}
            )
        except httpx.HTTPError as error:
            report.webhook_errors[type(error).__name__] += 1
            continue
        report.load.time(operation, time.perf_counter() - started)
        outcome = response.json().get("outcome") if response.status_code == 200 else None
        if outcome == "applied":
            report.events_acknowledged.add(event_id)
        else:
            report.webhook_errors[f"http {response.status_code} {outcome or response.text[:60]}"] += 1


async def _mixed(
    served: Served,
    report: MixedReport,
    events: asyncio.Queue[tuple[str, str, bytes, str]],
    chat: int,
    mcp: int,
    webhooks: int,
) -> None:
    deadline = time.monotonic() + report.seconds
    limits = httpx.Limits(max_connections=max(1, webhooks), max_keepalive_connections=max(1, webhooks))
    async with httpx.AsyncClient(base_url=served.base, limits=limits, timeout=60) as http:
        tasks = [chat_shopper(served.base, n, deadline, report.load) for n in range(chat)]
        tasks += [mcp_shopper(served.base, n, deadline, report) for n in range(mcp)]
        tasks += [webhook_sender(http, events, report, "webhook", deadline) for _ in range(webhooks)]
        # Work in flight at the deadline is finished; the bound covers a stuck server.
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=report.seconds + 180)


async def _burst(
    served: Served, report: MixedReport, events: asyncio.Queue[tuple[str, str, bytes, str]]
) -> None:
    count = events.qsize()
    limits = httpx.Limits(max_connections=BURST_SENDERS, max_keepalive_connections=BURST_SENDERS)
    async with httpx.AsyncClient(base_url=served.base, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(
            *(webhook_sender(http, events, report, "burst webhook") for _ in range(BURST_SENDERS))
        )
        report.burst_seconds = time.perf_counter() - started
    report.burst_events = count


def run_configuration(
    label: str,
    data_dir: Path,
    *,
    workers: int,
    database_url: str | None,
    seconds: float,
    chat: int,
    mcp: int,
    webhooks: int,
    burst: int,
    shine: str = SHINE,
) -> MixedReport:
    """One configuration from a fresh store (a SQLite file in `data_dir`, or the database at `database_url`)."""
    settings = settings_for(data_dir, database_url)
    mixed_orders = max(50, int(webhooks * seconds * 150))  # more than the senders can get through
    made = asyncio.run(prepare_store(settings, mixed_orders + burst))
    signed = [(order_id, *completed_event(settings, order_id, session_id)) for order_id, session_id in made]
    report = MixedReport(label, seconds)
    with shine_serve(data_dir, workers=workers, database_url=database_url, shine=shine) as served:

        async def both() -> None:
            mixed_queue: asyncio.Queue[tuple[str, str, bytes, str]] = asyncio.Queue()
            for item in signed[:mixed_orders]:
                mixed_queue.put_nowait(item)
            burst_queue: asyncio.Queue[tuple[str, str, bytes, str]] = asyncio.Queue()
            for item in signed[mixed_orders:]:
                burst_queue.put_nowait(item)
            postmaster = postmaster_pid(database_url) if database_url else None
            database_before = tree_cpu_seconds(postmaster) if postmaster else 0.0
            cpu_before, server_before = cpu_seconds(), served.cpu()
            await _mixed(served, report, mixed_queue, chat, mcp, webhooks)
            report.generator_cpu = cpu_seconds() - cpu_before
            report.server_cpu = served.cpu() - server_before
            if postmaster:
                report.database_cpu = tree_cpu_seconds(postmaster) - database_before
            if burst:
                await _burst(served, report, burst_queue)

        try:
            asyncio.run(both())
        except TimeoutError:
            # A call that never returned: what the server said last is the lead (issue 20's hung checkout).
            kept = Path(tempfile.gettempdir()) / f"shine-bench-load-hang-{workers}w.log"
            shutil.copyfile(served.log_path, kept)
            print(f"{label}: a call did not return; the server's log is kept at {kept}", file=sys.stderr)
            raise
    url = settings.effective_database_url
    stored = asyncio.run(
        read_back(url, report.orders_acknowledged, report.events_acknowledged, report.webhook_orders)
    )
    report.load.turns_stored, report.load.chats_stored = stored.turns, stored.chats
    report.orders_stored, report.events_stored, report.paid_orders = (
        stored.orders,
        stored.events,
        stored.paid_orders,
    )
    log = served.log_path.read_text(errors="replace")
    report.load.statuses.update(int(status) for status in ACCESS_LINE.findall(log))
    report.load.locked_in_log = log.count("database is locked")
    report.load.tracebacks_in_log = log.count("Traceback (most recent call last)")
    return report


@contextmanager
def postgres_cluster(start: bool = True) -> Iterator[Callable[[str], str]]:
    """A throwaway cluster; yields a function giving the URL of a new empty database by name."""
    from tests.support.postgres import postgres_bin, throwaway_cluster

    if not start:
        yield lambda name: ""
        return
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries are not installed (make postgres-tools)")
    with throwaway_cluster() as url:
        import subprocess

        host_port = url.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")

        def database(name: str) -> str:
            subprocess.run(
                [str(bin_dir / "createdb"), "-h", host, "-p", port, "-U", "postgres", name], check=True
            )
            return url.rsplit("/", 1)[0] + "/" + name

        yield database


def print_report(report: MixedReport, clients: str) -> None:
    load = report.load
    print(f"\n{report.label}: {clients} for {report.seconds:.0f} s")
    print(f"  {'operation':26} {'count':>6} {'p50':>9} {'p95':>9} {'p99':>9}")
    for operation, values in sorted(load.timings.items()):
        print(
            f"  {operation:26} {len(values):6d} {_percentile(values, 0.5) * 1000:6.1f} ms "
            f"{_percentile(values, 0.95) * 1000:6.1f} ms {_percentile(values, 0.99) * 1000:6.1f} ms"
        )
    print(
        f"  throughput: {report.requests_per_second:,.1f} requests/s (mixed)  ·  webhook burst "
        f"{report.webhooks_per_second:,.0f} events/s ({report.burst_events} events, {BURST_SENDERS} senders)"
    )
    print(
        f"  CPU during the mixed phase: load generator {report.generator_cpu / report.seconds:.0%} of a core, "
        f"server {report.server_cpu / report.seconds:.0%} of a core"
        + (
            f", PostgreSQL {report.database_cpu / report.seconds:.0%}"
            if report.database_cpu is not None
            else ""
        )
    )
    print(f"  HTTP statuses (server log): {dict(sorted(load.statuses.items()))}")
    print(
        f"  errors {report.errors}: chat {dict(load.chat_errors) or 0}, MCP {dict(load.mcp_errors) or 0}, "
        f"webhooks {dict(report.webhook_errors) or 0}, tracebacks {load.tracebacks_in_log}"
    )
    print(f"  refused (a shopper could act on it): {dict(load.mcp_refused) or 0}")
    print(
        f"  lost writes {report.lost_writes}: orders {report.orders_stored}/{len(report.orders_acknowledged)} stored, "
        f"turns {load.turns_stored} stored of {load.replies_shown - load.replies_told_not_saved} shown, "
        f"events {min(report.events_stored, report.paid_orders)}/{len(report.events_acknowledged)} stored and paid"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--chat", type=int, default=8, help="chat shoppers")
    parser.add_argument("--mcp", type=int, default=16, help="MCP clients")
    parser.add_argument("--webhooks", type=int, default=2, help="webhook senders during the mixed phase")
    parser.add_argument("--burst", type=int, default=1000, help="webhook events sent alone afterwards")
    parser.add_argument("--workers", default="1,2,4", help="PostgreSQL worker counts ('' for none)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--shine", default=SHINE, help="the `shine` command to serve")
    args = parser.parse_args()
    clients = f"{args.chat} chat shoppers + {args.mcp} MCP clients + {args.webhooks} webhook senders"
    shape: dict[str, Any] = dict(
        seconds=args.seconds,
        chat=args.chat,
        mcp=args.mcp,
        webhooks=args.webhooks,
        burst=args.burst,
        shine=args.shine,
    )
    reports: list[MixedReport] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="shine-load-") as directory:
            reports.append(
                run_configuration("SQLite, 1 worker", Path(directory), workers=1, database_url=None, **shape)
            )
        print_report(reports[-1], clients)
    worker_counts = [int(n) for n in args.workers.split(",") if n.strip()]
    by_workers: dict[int, MixedReport] = {}
    with postgres_cluster(start=bool(worker_counts)) as database:
        for workers in worker_counts:
            directory = tempfile.mkdtemp(prefix="shine-load-pg-")
            try:
                url = database(f"shine_load_{workers}")
                label = f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"
                report = run_configuration(label, Path(directory), workers=workers, database_url=url, **shape)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            by_workers[workers] = report
            reports.append(report)
            print_report(report, clients)
    print("\nSummary")
    for report in reports:
        print(
            f"  {report.label:24} {report.requests_per_second:8,.1f} requests/s  webhooks "
            f"{report.webhooks_per_second:6,.0f}/s  errors {report.errors}  lost writes {report.lost_writes}  "
            f"generator CPU {report.generator_cpu / report.seconds:.0%}"
        )
    clean = all(r.errors == 0 and r.lost_writes == 0 for r in reports)
    print(f"  target 0 errors and 0 lost writes in every configuration: {'met' if clean else 'MISSED'}")
    if 1 in by_workers:
        base = by_workers[1].requests_per_second
        for workers in (2, 4):
            if workers in by_workers and base:
                ratio = by_workers[workers].requests_per_second / base
                target = f"  ·  target ≥ {SCALING_TARGET}: {'met' if ratio >= SCALING_TARGET else 'MISSED'}"
                print(f"  scaling 1 → {workers} workers: {ratio:.2f}×{target if workers == 2 else ''}")
    if 2 in by_workers:
        rate = by_workers[2].webhooks_per_second
        print(
            f"  webhooks with 2 workers on PostgreSQL: {rate:,.0f} events/s  ·  target ≥ {WEBHOOK_TARGET:.0f}: "
            f"{'met' if rate >= WEBHOOK_TARGET else 'MISSED'}"
        )
    if not clean:
        sys.exit(1)


if __name__ == "__main__":
    main()
