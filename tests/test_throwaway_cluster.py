"""The throwaway PostgreSQL cluster the tests and the load benchmark start never stops on its own log.

Issue 20's hung MCP `checkout`: its server log went to a pipe nobody read. Concurrent checkouts of one cart
log a duplicate-key ERROR each (the losing insert, which checkout handles), and once 64 KiB of log had
piled up every backend that logged blocked in write(2) for good: checkout's `INSERT INTO orders` stayed
"active" with no wait event and no lock, and the MCP call never returned."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from tests.support.postgres import throwaway_cluster

pytestmark = pytest.mark.postgres

WARNINGS = 20  # of 10 kB each: 200 kB of server log, three times what a pipe holds


async def test_the_cluster_keeps_answering_after_logging_more_than_a_pipe_holds(
    postgres_binaries: None,
) -> None:
    with throwaway_cluster() as url:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            with anyio.fail_after(30):
                for _ in range(WARNINGS):
                    await connection.execute("DO $$ BEGIN RAISE WARNING '%', repeat('x', 10000); END $$")
                assert await connection.fetchval("SELECT 1") == 1
        finally:
            connection.terminate()
