"""Shine under a mixed shopper workload, on one worker on SQLite and on 1, 2 and 4 workers on PostgreSQL.

Each configuration is `shine serve --workers N` in its own processes on a loopback port (PostgreSQL: a
throwaway cluster started here, as the tests do). At once, for `--seconds`:
- chat shoppers on the web widget's API (`POST /api/chat`, the offline advisor, one guest each);
- MCP clients: `search_products`, `get_product`, `recommend_products`, `add_to_cart`, and every few rounds
  `checkout` (the simulated gateway: an order and a payment link);
- webhook senders: `checkout.session.completed` events for pending orders, signed as the simulated gateway
  (and Stripe) sign them, to `/stripe/webhook`, at a steady `--webhook-rate` (20 a second in all).
Every client keeps one connection, as a browser or an MCP client does, and the MCP clients each sign in
with an access token of their own (`SHINE_MCP_AUTH=required`): each shops with its own cart. The clients
are the benchmark's lean ones (`lean_http.py`, ~0.4 ms of CPU a request) so that the workers, not the
generator, get the cores; `--mcp-client sdk` uses the MCP SDK's client instead.
Then a webhook burst alone (`--burst` events, 8 senders): events/s. Afterwards the database is read back:
every order checkout acknowledged, every turn a shopper saw and every event acknowledged as applied must be
stored ("lost writes"). The load generator's own CPU comes from /proc/self/stat; it shares the machine's
cores with the server, so its share is printed next to the throughput.

The mix runs `--warmup` seconds first, not counted: each worker builds its caches and each client opens its
MCP session then, and the clients carry on into the measured phase. Per configuration it prints the CPU a
request took (server, generator, PostgreSQL with the backends of closed connections), PostgreSQL's
transactions per request and the connections it accepted (a pool opening and closing them), how often the
workers built their catalog index, and a ceiling: the requests/s the machine's cores could carry at that
CPU if nothing waited (one core at most per worker). Before and after the runs, two CPU-bound processes
are timed against one (`two_processes_probe`): what a second core gives on this machine at that moment.
Per 1 → N pair it also prints the bound (`MixedReport.capacity_at`): the shoppers' ratio N workers could
reach at most had a request cost them the server CPU it cost one worker, with the database's and the
generator's CPU as measured; and how much more server CPU a request did cost them.
`--profile DIR` records each worker with py-spy during the measured phase (collapsed stacks; a sample is
CPU or a wait for a core, so compare profiles of runs at the same load). `--workers 1,2,1,2` interleaves.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_load.py [--seconds 20] [--warmup 5] [--chat 8]
[--mcp 16] [--webhooks 2] [--burst 1000] [--workers 1,2,1,2,1,2,4] [--no-sqlite] [--profile DIR]`).
Targets: 0 errors and 0 lost writes everywhere; PostgreSQL 2 workers ≥ 1.6× 1 worker; webhooks ≥ 500/s
with 2 workers on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, cast

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_load_sqlite import (
    ACCESS_LINE,
    QUERIES,
    LoadReport,
    ToolCaller,
    _percentile,
    chat_shopper,
    mcp_client,
    timed_call,
)
from benchmarks.lean_http import HttpError, LeanHttp
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
    shopper_tokens,
    tree_cpu_seconds,
)

CHECKOUT_EVERY = 4  # an MCP client checks out its cart every this many rounds
CORES = os.cpu_count() or 1
BURST_SENDERS = 8
SCALING_TARGET = 1.6
WEBHOOK_TARGET = 500.0
# Payments in the mixed phase arrive at a steady rate, as shoppers pay: senders that sent as fast as they were
# answered made the mix (and so requests/s) swing with the webhooks' latency, 450 to 1 900 of them in 20 s.
WEBHOOK_RATE = 20.0


@dataclass
class MixedReport:
    """One configuration's run: `load` holds the chat side and per-operation timings (shared shape with
    `bench_load_sqlite`); the rest is the MCP, webhook and read-back side."""

    label: str
    seconds: float
    workers: int = 1
    load: LoadReport = field(default_factory=LoadReport)
    orders_acknowledged: set[str] = field(default_factory=set)
    events_acknowledged: set[str] = field(default_factory=set)
    webhook_orders: set[str] = field(default_factory=set)
    webhook_errors: Counter[str] = field(default_factory=Counter)
    burst_events: int = 0
    burst_seconds: float = 0.0
    generator_cpu: float = 0.0  # seconds of CPU the load generator took during the mixed phase
    server_cpu: float = 0.0
    # each worker's share of a core in the mixed phase and in the burst: how evenly connections spread
    worker_shares: list[float] = field(default_factory=list)
    burst_worker_shares: list[float] = field(default_factory=list)
    database_cpu: float | None = None  # PostgreSQL's processes, when it runs on this machine
    warmup_seconds: float = 0.0  # the same mix before the measured phase, not counted in the figures
    database_transactions: int | None = None  # committed + rolled back in the mixed phase (PostgreSQL)
    database_sessions: int | None = None  # connections PostgreSQL accepted in the mixed phase (pool churn)
    index_builds: int = 0  # times a worker built its catalog index, warm-up included (server log)
    orders_stored: int = 0
    events_stored: int = 0
    paid_orders: int = 0

    @property
    def operations(self) -> int:
        return sum(len(values) for name, values in self.load.timings.items() if not name.startswith("burst"))

    @property
    def requests_per_second(self) -> float:
        return self.operations / self.seconds

    def cpu_ms_per_request(self, cpu: float | None) -> float:
        return 1000 * (cpu or 0.0) / self.operations if self.operations else 0.0

    @property
    def ceiling(self) -> float:
        """The most requests/s this machine could carry at the CPU a request took here, if nothing waited:
        the cores shared by server, generator and database, and no more than one core per worker for the
        server's part. Whether a scaling target is reachable at all."""
        per_request = self.server_cpu + self.generator_cpu + (self.database_cpu or 0.0)
        if not per_request or not self.server_cpu:
            return 0.0
        return min(CORES * self.operations / per_request, self.workers * self.operations / self.server_cpu)

    def capacity_at(self, server_ms: float, cores: int = CORES) -> float:
        """The requests/s this run's mix could reach had a request cost its server `server_ms` of CPU (one
        worker's figure, say): the cores left after this run's database and generator at their CPU a
        request as measured here, and no more than one core per worker. When this is under a scaling
        target, making the workers' own code faster does not meet it on this machine."""
        if not (self.operations and server_ms):
            return 0.0
        per_request = server_ms / 1000 + (self.generator_cpu + (self.database_cpu or 0.0)) / self.operations
        return min(cores / per_request, self.workers * 1000 / server_ms)

    def absorb_warmup(self, warm: MixedReport) -> None:
        """The warm-up's writes must be stored too and its errors are errors; its timings are not counted."""
        self.warmup_seconds = warm.seconds
        self.orders_acknowledged |= warm.orders_acknowledged
        self.events_acknowledged |= warm.events_acknowledged
        self.webhook_orders |= warm.webhook_orders
        self.webhook_errors.update(warm.webhook_errors)
        load, before = self.load, warm.load
        load.replies_shown += before.replies_shown
        load.replies_told_not_saved += before.replies_told_not_saved
        load.chat_errors.update(before.chat_errors)
        load.mcp_errors.update(before.mcp_errors)

    def kind_per_second(self, prefix: str) -> float:
        """Requests of one kind ("chat", "mcp", "webhook") a second in the mixed phase: two runs' totals can
        differ in their mix (a chat reply costs the server ~4 MCP calls), so the ratio is shown per kind too."""
        done = sum(len(values) for name, values in self.load.timings.items() if name.startswith(prefix))
        return done / self.seconds if self.seconds else 0.0

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


class Phased:
    """The report of the phase under way, to the clients of both phases: the warm-up's until `switch`, the
    measured one's after it. The clients keep their sessions and connections across the switch."""

    def __init__(self, warm: MixedReport, measured: MixedReport, switch: float) -> None:
        self.warm, self.measured, self.switch = warm, measured, switch
        self.seconds = warm.seconds + measured.seconds
        self.load = cast(LoadReport, _CurrentLoad(self))

    def now(self) -> MixedReport:
        return self.warm if time.monotonic() < self.switch else self.measured

    def __getattr__(self, name: str) -> Any:
        return getattr(self.now(), name)


class _CurrentLoad:
    """`Phased.load`: the chat shoppers' and MCP calls' `LoadReport`, of the phase under way."""

    def __init__(self, phased: Phased) -> None:
        object.__setattr__(self, "_phased", phased)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._phased.now().load, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._phased.now().load, name, value)


# Refusals a shopper could act on: stock, a price that changed, an empty cart, and the cap of one product
# per order (checkout does not empty a cart before its payment, so a client's cart keeps growing).
MIXED_REFUSALS = (" in stock", "price", "changed", "empty", "of one product per order")


async def mcp_shopper(
    base: str, number: int, deadline: float, report: MixedReport, kind: str = "lean", token: str | None = None
) -> None:
    """One MCP client: search, open a product, ask for recommendations, add to the cart; check out now
    and then. Refusals a shopper could act on (stock, a price that changed) are counted, not errors."""
    load = report.load

    async def call(client: ToolCaller, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        return await timed_call(client, load, tool, arguments, MIXED_REFUSALS)

    try:
        async with mcp_client(f"{base}/mcp", kind, token) as client:
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
    base: str,
    events: asyncio.Queue[tuple[str, str, bytes, str]],
    report: MixedReport,
    operation: str,
    deadline: float | None = None,
    rate: float = 0.0,
) -> None:
    """One sender on one kept connection, as a payment provider delivers: events one after another, at
    `rate` events a second (payments arrive as shoppers pay, not as fast as the server answers), or as fast
    as they are answered when `rate` is 0 (the burst)."""
    async with LeanHttp(base, timeout=60) as http:
        due = time.monotonic()
        while not events.empty() and (deadline is None or time.monotonic() < deadline):
            if rate:
                due += 1 / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            order_id, event_id, payload, signature = events.get_nowait()
            report.webhook_orders.add(order_id)
            started = time.perf_counter()
            try:
                response = await http.request(
                    "POST",
                    "/stripe/webhook",
                    payload,
                    {"content-type": "application/json", "stripe-signature": signature},
                )
            except (HttpError, TimeoutError, asyncio.IncompleteReadError) as error:
                report.webhook_errors[type(error).__name__] += 1
                await http.close()
                continue
            report.load.time(operation, time.perf_counter() - started)
            outcome = response.json().get("outcome") if response.status == 200 else None
            if outcome == "applied":
                report.events_acknowledged.add(event_id)
            else:
                shown = outcome or response.body[:60].decode(errors="replace")
                report.webhook_errors[f"http {response.status} {shown}"] += 1


async def _mixed(
    served: Served,
    report: MixedReport,
    events: asyncio.Queue[tuple[str, str, bytes, str]],
    chat: int,
    mcp: int,
    webhooks: int,
    mcp_kind: str = "lean",
    mcp_tokens: list[str] | None = None,
    webhook_rate: float = 0.0,
) -> None:
    """The mixed phase. `mcp_tokens`: one access token per MCP client (each its own shopper and cart);
    without them the clients share the loopback user's cart."""
    deadline = time.monotonic() + report.seconds
    tasks = [chat_shopper(served.base, n, deadline, report.load) for n in range(chat)]
    tasks += [
        mcp_shopper(served.base, n, deadline, report, mcp_kind, mcp_tokens[n] if mcp_tokens else None)
        for n in range(mcp)
    ]
    per_sender = webhook_rate / webhooks if webhooks else 0.0
    tasks += [
        webhook_sender(served.base, events, report, "webhook", deadline, per_sender) for _ in range(webhooks)
    ]
    # Work in flight at the deadline is finished; the bound covers a stuck server (a call takes < 1 s at
    # p99, and a pool wait gives up after 30 s: 90 s more means a call that will never return).
    gathered = asyncio.gather(*tasks)
    finished, _ = await asyncio.wait({gathered}, timeout=report.seconds + 90)
    if not finished:  # the client side of the stuck call: which call, and where it waits
        from web_shell.task_dump import dump_text

        kept = Path(tempfile.gettempdir()) / "shine-bench-load-hang-client.txt"
        kept.write_text(
            dump_text(None, asyncio.get_running_loop(), "the load generator, a call not returning:")
        )
        print(f"{report.label}: the load generator's tasks are kept at {kept}", file=sys.stderr)
        gathered.cancel()
        raise TimeoutError(f"a call did not return within {report.seconds + 90:.0f} s")
    await gathered


async def _burst(
    served: Served, report: MixedReport, events: asyncio.Queue[tuple[str, str, bytes, str]]
) -> None:
    count = events.qsize()
    started = time.perf_counter()
    await asyncio.gather(
        *(webhook_sender(served.base, events, report, "burst webhook") for _ in range(BURST_SENDERS))
    )
    report.burst_seconds = time.perf_counter() - started
    report.burst_events = count


def keep_hang_evidence(served: Served, workers: int, database_url: str | None, kept: Path) -> None:
    """What a stuck server was doing, kept at `kept` (its log) and beside it (`.pg.txt`): each worker's task
    stacks and pool (SIGUSR1 to `shine serve`, which passes it to its workers: `web_shell.task_dump`), and
    PostgreSQL's sessions in every state and its locks."""
    import signal

    os.kill(served.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # each worker writes its dump as soon as the signal reaches it
        if served.log_path.read_text(errors="replace").count("what this worker is doing") >= workers:
            break
        time.sleep(0.2)
    shutil.copyfile(served.log_path, kept)
    if database_url:
        kept.with_suffix(".pg.txt").write_text(asyncio.run(database_activity(database_url)))


async def database_activity(url: str) -> str:
    """pg_stat_activity (every session, idle in transaction included: state, wait, query) and pg_locks."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    parts: list[str] = []
    try:
        async with engine.connect() as connection:
            for title, query in (
                (
                    "pg_stat_activity",
                    "SELECT pid, datname, state, now() - xact_start AS in_transaction, now() - state_change AS in_state, "
                    "wait_event_type, wait_event, pg_blocking_pids(pid) AS blocked_by, backend_xid, backend_type, "
                    "left(query, 300) AS query "
                    "FROM pg_stat_activity ORDER BY xact_start NULLS LAST",
                ),
                (
                    "pg_locks",
                    "SELECT l.pid, l.locktype, l.mode, l.granted, c.relname, l.transactionid, l.virtualxid "
                    "FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation ORDER BY l.granted, l.pid",
                ),
            ):
                rows = (await connection.execute(text(query))).all()
                parts.append(f"== {title} ({len(rows)} rows)")
                parts += [" | ".join(str(value) for value in row) for row in rows]
                if title == "pg_stat_activity":  # each backend's process: running, sleeping or stopped
                    parts.append("== backend processes (pid, state, CPU seconds so far)")
                    parts += [_process_state(int(row[0])) for row in rows if row[0] is not None]
    finally:
        await engine.dispose()
    return "\n".join(parts) + "\n"


def _process_state(pid: int) -> str:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return f"{pid} | not on this machine"
    try:  # the kernel function it sleeps in: a socket read, a futex (a lock), a timer...
        sleeping_in = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        sleeping_in = "?"
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return f"{pid} | {fields[0]} | {cpu:.2f} | {sleeping_in}"


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
    warmup: float = 0.0,
    shine: str = SHINE,
    profile_dir: Path | None = None,
    mcp_client: str = "lean",
    webhook_rate: float = WEBHOOK_RATE,
) -> MixedReport:
    """One configuration from a fresh store (a SQLite file in `data_dir`, or the database at `database_url`)."""
    settings = settings_for(data_dir, database_url)
    mixed_orders = max(50, int(webhooks * (seconds + warmup) * 150))  # more than the senders can get through
    made = asyncio.run(prepare_store(settings, mixed_orders + burst))
    signed = [(order_id, *completed_event(settings, order_id, session_id)) for order_id, session_id in made]
    report = MixedReport(label, seconds, workers)
    with shine_serve(
        data_dir, workers=workers, database_url=database_url, shine=shine, mcp_auth=True
    ) as served:
        # Each MCP client signs in as its own shopper, with its own cart, as real shoppers do (sharing the
        # loopback user's one cart, every add and checkout queued on that cart's row lock).
        mcp_tokens = asyncio.run(shopper_tokens(settings, served.base, mcp))

        async def both() -> None:
            mixed_queue: asyncio.Queue[tuple[str, str, bytes, str]] = asyncio.Queue()
            for item in signed[:mixed_orders]:
                mixed_queue.put_nowait(item)
            burst_queue: asyncio.Queue[tuple[str, str, bytes, str]] = asyncio.Queue()
            for item in signed[mixed_orders:]:
                burst_queue.put_nowait(item)
            # Each worker builds its caches on its first requests, and each client opens its MCP session
            # (the tool list read on both sides) and its connections: the warm-up's figures are not counted;
            # the clients carry on into the measured phase with the sessions they have.
            warm = MixedReport(label, warmup, workers)
            phased = Phased(warm, report, time.monotonic() + warmup)
            postmaster = postmaster_pid(database_url) if database_url else None
            before: dict[str, Any] = {}
            with ExitStack() as spies:

                async def measure_from_switch() -> None:
                    await asyncio.sleep(max(0.0, phased.switch - time.monotonic()))
                    before["counts"] = await database_counts(database_url) if database_url else (0, 0)
                    spies.enter_context(profiling(served, workers, report.seconds, profile_dir, label))
                    before["database"] = tree_cpu_seconds(postmaster) if postmaster else 0.0
                    before["generator"], before["server"] = cpu_seconds(), served.cpu()
                    before["workers"] = served.worker_cpu()

                switch = asyncio.create_task(measure_from_switch())
                await _mixed(
                    served,
                    cast(MixedReport, phased),
                    mixed_queue,
                    chat,
                    mcp,
                    webhooks,
                    mcp_client,
                    mcp_tokens,
                    webhook_rate,
                )
                await switch
                report.generator_cpu = cpu_seconds() - before["generator"]
                report.server_cpu = served.cpu() - before["server"]
                report.worker_shares = _shares(before["workers"], served.worker_cpu(), report.seconds)
                if postmaster:
                    report.database_cpu = tree_cpu_seconds(postmaster) - before["database"]
            report.absorb_warmup(warm)
            if database_url:
                transactions, sessions = await database_counts(database_url)
                report.database_transactions = transactions - before["counts"][0]
                report.database_sessions = sessions - before["counts"][1]
            if burst:
                started = served.worker_cpu()
                await _burst(served, report, burst_queue)
                report.burst_worker_shares = _shares(started, served.worker_cpu(), report.burst_seconds)

        try:
            asyncio.run(both())
        except TimeoutError:
            # A call that never returned: what the server said last is the lead (issue 20's hung checkout).
            kept = Path(tempfile.gettempdir()) / f"shine-bench-load-hang-{workers}w.log"
            keep_hang_evidence(served, workers, database_url, kept)
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
    report.index_builds = log.count("catalog index built")
    return report


def _shares(before: dict[int, float], after: dict[int, float], seconds: float) -> list[float]:
    """Each worker's CPU between two readings, as a share of a core, busiest first."""
    used = [after[pid] - before.get(pid, 0.0) for pid in after]
    return sorted((u / seconds for u in used), reverse=True) if seconds else []


async def database_counts(url: str) -> tuple[int, int]:
    """Transactions the database has ended and connections it has accepted so far (PostgreSQL's own counts;
    a backend reports within ~1 s). A pool that opens and closes connections under load shows in the second."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text(
                    "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database "
                    "WHERE datname = current_database()"
                )
            )
            transactions, sessions = found.one()
            return int(transactions), int(sessions)
    finally:
        await engine.dispose()


@contextmanager
def profiling(
    served: Served, workers: int, seconds: float, directory: Path | None, label: str
) -> Iterator[None]:
    """`py-spy record` on each worker for the measured phase, as collapsed stacks in `directory` (one file a
    worker): where a worker's CPU goes, to compare 1 and 2 workers. Nothing when `directory` is None."""
    if directory is None:
        yield
        return
    import subprocess

    from benchmarks.load_support import process_tree

    directory.mkdir(parents=True, exist_ok=True)
    pids = [served.pid] if workers == 1 else [p for p in process_tree(served.pid) if p != served.pid]
    name = label.lower().replace(",", "").replace(" ", "-")
    spies = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "-o",
                str(directory / f"{name}-{n}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n, pid in enumerate(pids)
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=seconds + 60)


PROBE_CODE = """
import time
cpu, wall, table = time.process_time(), time.perf_counter(), {}
for i in range(2_000_000):
    table[i % 1000] = str(i)
print(time.process_time() - cpu, time.perf_counter() - wall)
"""


def two_processes_probe(rounds: int = 3) -> str:
    """How much two CPU-bound Python processes at once get done, against one alone (alone and in pairs,
    interleaved): the most a second worker could add on this machine before any cost of Shine's own. On
    two free cores the pair does 2.0× the work per second; other jobs, or two virtual cores that share
    one physical core, give less, and a unit of work then also takes more CPU time."""
    import subprocess

    def run(copies: int) -> list[tuple[float, float]]:
        started = [
            subprocess.Popen([sys.executable, "-c", PROBE_CODE], stdout=subprocess.PIPE, text=True)
            for _ in range(copies)
        ]
        return [tuple(map(float, process.communicate()[0].split())) for process in started]  # type: ignore[misc]

    alone_wall, alone_cpu, pair_wall, pair_cpu = [], [], [], []
    for _ in range(rounds):
        ((cpu, wall),) = run(1)
        alone_wall.append(wall)
        alone_cpu.append(cpu)
        pair = run(2)
        pair_wall.append(max(wall for _, wall in pair))
        pair_cpu.append(sum(cpu for cpu, _ in pair) / 2)
    speedup = 2 * median(alone_wall) / median(pair_wall)
    return (
        f"this machine now: two CPU-bound processes at once do {speedup:.2f}× the work of one per second "
        f"(2.00 on two free cores); a unit of work takes {median(pair_cpu) / median(alone_cpu):.2f}× the "
        f"CPU time when two run (median of {rounds} interleaved rounds)"
    )


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
    warm = f" after {report.warmup_seconds:.0f} s of warm-up" if report.warmup_seconds else ""
    print(f"\n{report.label}: {clients} for {report.seconds:.0f} s{warm}")
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
    if len(report.worker_shares) > 1:
        mixed = " / ".join(f"{share:.0%}" for share in report.worker_shares)
        burst = " / ".join(f"{share:.0%}" for share in report.burst_worker_shares)
        print(f"  each worker's share of a core: mixed phase {mixed}" + (f", burst {burst}" if burst else ""))
    database = report.cpu_ms_per_request(report.database_cpu)
    print(
        f"  CPU per request: server {report.cpu_ms_per_request(report.server_cpu):.1f} ms, load generator "
        f"{report.cpu_ms_per_request(report.generator_cpu):.1f} ms"
        + (f", PostgreSQL {database:.1f} ms" if report.database_cpu is not None else "")
        + f"  ·  ceiling at that CPU on {CORES} cores: {report.ceiling:,.0f} requests/s"
    )
    if report.database_transactions is not None and report.operations:
        opened = report.database_sessions or 0
        print(
            f"  database transactions per request: {report.database_transactions / report.operations:.2f}"
            f"  ·  connections opened: {opened} ({opened / report.seconds:.1f}/s)"
        )
    print(
        f"  catalog index built {report.index_builds} times by {report.workers} worker(s) "
        "(once each is the first build; more is a rebuild)"
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


def shoppers_per_second(report: MixedReport) -> float:
    """Chat replies and MCP calls a second: the clients that send their next request when the last is
    answered, so what they get done is what the server can do. The mixed phase's webhooks arrive at a fixed
    rate (`--webhook-rate`) whatever the server can do; their capacity is the burst's."""
    return report.kind_per_second("chat") + report.kind_per_second("mcp")


def print_scaling(workers: int, pairs: list[tuple[MixedReport, MixedReport]]) -> None:
    """1 → N workers, pair by pair in the order they ran (`--workers 1,2,1,2` interleaves them), and the
    median: on a shared machine single pairs swing widely (1.1× to 1.8× in one hour), so the target is judged
    on the median. Judged on the shoppers' requests (`shoppers_per_second`): counted in, the paced webhooks
    (20 a second in every run, a fifth of one worker's requests) pull every ratio towards 1. All requests,
    each kind, and the ceilings (what the cores could carry at the CPU a request took) are shown beside it."""
    pairs = [(one, other) for one, other in pairs if shoppers_per_second(one)]
    if not pairs:
        return
    ratios = [shoppers_per_second(other) / shoppers_per_second(one) for one, other in pairs]
    overall = [other.requests_per_second / one.requests_per_second for one, other in pairs]
    ratio = median(ratios)
    judged = f"  ·  target ≥ {SCALING_TARGET}: {'met' if ratio >= SCALING_TARGET else 'MISSED'}"
    of_pairs = f"median of {len(ratios)} pairs: " if len(ratios) > 1 else ""
    print(
        f"  scaling 1 → {workers} workers, shoppers' requests (chat + MCP): {ratio:.2f}× "
        f"({of_pairs}{', '.join(f'{r:.2f}×' for r in ratios)}){judged if workers == 2 else ''}"
    )
    print(
        f"    with the paced webhooks counted in: {median(overall):.2f}× "
        f"({of_pairs}{', '.join(f'{r:.2f}×' for r in overall)})"
    )
    for n, (one, other) in enumerate(pairs, 1):
        kinds = "  ".join(
            f"{kind} {other.kind_per_second(kind) / one.kind_per_second(kind):.2f}×"
            for kind in ("chat", "mcp")
            if one.kind_per_second(kind)
        )
        ceilings = f"{one.ceiling:,.0f} → {other.ceiling:,.0f} requests/s" if one.ceiling else "n/a"
        one_ms = one.cpu_ms_per_request(one.server_cpu)
        paced = other.requests_per_second - shoppers_per_second(other)
        bound = (other.capacity_at(one_ms) - paced) / shoppers_per_second(one) if one_ms else 0.0
        limit = (
            f"; at most {bound:.2f}× for shoppers (the cores left after the database and the generator, "
            f"at one worker's server CPU a request), and a request cost {workers} workers "
            f"{other.cpu_ms_per_request(other.server_cpu) / one_ms - 1:+.0%} server CPU"
            if bound
            else ""
        )
        print(
            f"    pair {n}: shoppers {shoppers_per_second(one):,.1f} → {shoppers_per_second(other):,.1f} "
            f"requests/s, by kind {kinds}; all {one.requests_per_second:,.1f} → {other.requests_per_second:,.1f}; "
            f"server CPU {one_ms:.1f} → "
            f"{other.cpu_ms_per_request(other.server_cpu):.1f} ms a request; ceilings at that CPU on {CORES} "
            f"cores {ceilings}{limit}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of the same mix first, not counted (0: none)"
    )
    parser.add_argument("--chat", type=int, default=8, help="chat shoppers")
    parser.add_argument("--mcp", type=int, default=16, help="MCP clients")
    parser.add_argument("--webhooks", type=int, default=2, help="webhook senders during the mixed phase")
    parser.add_argument(
        "--webhook-rate",
        type=float,
        default=WEBHOOK_RATE,
        help="events a second those senders deliver in all (0: as fast as they are answered)",
    )
    parser.add_argument("--burst", type=int, default=1000, help="webhook events sent alone afterwards")
    parser.add_argument(
        "--workers",
        default="1,2,1,2,1,2,4",
        help="PostgreSQL worker counts in the order they run ('' for none); the default interleaves three "
        "1/2 pairs, whose median judges the scaling target (one pair swings 1.4-1.7x on this machine)",
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--shine", default=SHINE, help="the `shine` command to serve")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the load generator's event loop (uvloop: less of the machine's CPU goes to the generator)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy each worker in the measured phase into this folder"
    )
    parser.add_argument(
        "--mcp-client",
        choices=("lean", "sdk"),
        default="lean",
        help="the MCP clients: the benchmark's lean one (~0.3 ms of CPU a call) or the MCP SDK's (~3.5 ms)",
    )
    args = parser.parse_args()
    if args.loop == "uvloop":  # every asyncio.run here then runs on uvloop, as `shine serve` does
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    clients = f"{args.chat} chat shoppers + {args.mcp} MCP clients + {args.webhooks} webhook senders"
    shape: dict[str, Any] = dict(
        seconds=args.seconds,
        chat=args.chat,
        mcp=args.mcp,
        webhooks=args.webhooks,
        burst=args.burst,
        warmup=args.warmup,
        shine=args.shine,
        profile_dir=args.profile,
        mcp_client=args.mcp_client,
        webhook_rate=args.webhook_rate,
    )
    probe = two_processes_probe() if args.workers.strip() else None
    if probe is not None:
        print(probe)
    reports: list[MixedReport] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="shine-load-") as directory:
            reports.append(
                run_configuration("SQLite, 1 worker", Path(directory), workers=1, database_url=None, **shape)
            )
        print_report(reports[-1], clients)
    worker_counts = [int(n) for n in args.workers.split(",") if n.strip()]
    by_workers: dict[int, list[MixedReport]] = {}
    with postgres_cluster(start=bool(worker_counts)) as database:
        for run, workers in enumerate(worker_counts):  # a count may repeat: "1,2,1,2" interleaves runs
            directory = tempfile.mkdtemp(prefix="shine-load-pg-")
            try:
                url = database(f"shine_load_{run}_{workers}")
                label = f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"
                report = run_configuration(label, Path(directory), workers=workers, database_url=url, **shape)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            by_workers.setdefault(workers, []).append(report)
            reports.append(report)
            print_report(report, clients)
    print("\nSummary")
    for report in reports:
        print(
            f"  {report.label:24} {report.requests_per_second:8,.1f} requests/s  webhooks "
            f"{report.webhooks_per_second:6,.0f}/s  errors {report.errors}  lost writes {report.lost_writes}  "
            f"generator CPU {report.generator_cpu / report.seconds:.0%}  server CPU "
            f"{report.cpu_ms_per_request(report.server_cpu):.1f} ms/request  ceiling {report.ceiling:,.0f}/s"
        )
    clean = all(r.errors == 0 and r.lost_writes == 0 for r in reports)
    print(f"  target 0 errors and 0 lost writes in every configuration: {'met' if clean else 'MISSED'}")
    for workers in (2, 4):
        pairs = list(zip(by_workers.get(1, []), by_workers.get(workers, []), strict=False))
        if pairs:
            print_scaling(workers, pairs)
    if probe is not None:  # before the runs and after them: other jobs on the machine come and go
        print(f"  before the runs, {probe}\n  after the runs, {two_processes_probe()}")
    if 2 in by_workers:
        rates = [report.webhooks_per_second for report in by_workers[2]]
        rate = median(rates)
        each = f" (each run: {', '.join(f'{r:,.0f}' for r in rates)})" if len(rates) > 1 else ""
        print(
            f"  webhooks with 2 workers on PostgreSQL: {rate:,.0f} events/s{each}  ·  target ≥ "
            f"{WEBHOOK_TARGET:.0f}: {'met' if rate >= WEBHOOK_TARGET else 'MISSED'}"
        )
    if not clean:
        sys.exit(1)


if __name__ == "__main__":
    main()
