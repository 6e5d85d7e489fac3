"""Two workers starting at once on a fresh PostgreSQL database: both bring the schema up to date, the demo
catalog is loaded once, and both start, instead of one crashing on the other's half-made tables or rows
(migrations and the start-up catalog load each take an advisory lock)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 2
ROUNDS = 1

# Each worker imports everything, says "ready", and migrates only once told to, so both start together.
WORKER = """
import asyncio, sys
from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store.catalog import count_products

async def main() -> None:
    services = Services(Settings(data_dir=sys.argv[2], database_url=sys.argv[1], load_demo_catalog=True))
    async with services.running():
        print("products", await count_products(services.db), flush=True)

print("ready", flush=True)
sys.stdin.readline()
asyncio.run(main())
"""


async def fresh_database(server_url: str, name: str) -> str:
    admin = create_async_engine(server_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


async def tables_in(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        names = {row[0] for row in rows}
    await engine.dispose()
    return names


def migrate_together(url: str, data_dir: Path) -> list[subprocess.CompletedProcess[str]]:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    finished = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(worker.args, worker.returncode, out, err))
    return finished


async def test_two_workers_starting_on_a_fresh_database_at_once_both_start(
    postgres_url: str, tmp_path: Path
) -> None:
    for round_ in range(ROUNDS):
        url = await fresh_database(postgres_url, f"shine_fresh_{round_}")
        finished = await asyncio.to_thread(migrate_together, url, tmp_path)
        outcomes = [(f.returncode, f.stderr[-600:]) for f in finished]
        assert outcomes == [(0, "")] * WORKERS
        counts = {f.stdout.split()[-1] for f in finished}
        assert len(counts) == 1 and int(counts.pop()) >= 200  # one demo catalog, seen the same by both
        assert {"products", "product_feedback", "alembic_version"} <= await tables_in(url)
