"""Rate limits per IP and per user on `/mcp`, `/api/*` and the sign-in endpoints: a burst past the limit
gets `429` with `Retry-After`, waiting that long is enough, and every Shine process counts together."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from shine_mcp.auth.ratelimit import Limit, RateLimiter
from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store.db import open_database
from tests.auth.support import Browser, Clock, serving
from tests.auth.test_mcp_oauth import _call, _call_headers, _register, _tokens, _tools_call
from tests.support.postgres import free_port
from web_shell.app import create_app

RunShine = Callable[[Settings], AbstractContextManager[str]]


async def _get_account(http: httpx.AsyncClient, base: str) -> httpx.Response:
    return await http.post(
        f"{base}/mcp", headers=_call_headers("get_account"), content=_tools_call("get_account")
    )


async def test_a_burst_past_the_ip_limit_gets_429_and_recovers(
    run_shine: RunShine, shine_settings: Callable[..., Settings], clock: Clock
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings(rate_limit_ip=3)) as base:
            allowed = [(await _get_account(http, base)).status_code for _ in range(3)]
            refused = await _get_account(http, base)
            retry_after = int(refused.headers["retry-after"])
            clock.advance(seconds=retry_after)
            recovered = await _get_account(http, base)
    assert allowed == [200, 200, 200]
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert 1 <= retry_after <= 120
    assert recovered.status_code == 200


async def test_one_user_hitting_the_limit_does_not_block_another(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    settings = shine_settings(mcp_auth="required", rate_limit_user=3, rate_limit_ip=1000)
    async with httpx.AsyncClient() as ana_http, httpx.AsyncClient() as bob_http:
        ana, bob = Browser(ana_http, email="ana@example.com"), Browser(bob_http, email="bob@example.com")
        with run_shine(settings) as base:
            client_id = (await _register(ana_http, base))["client_id"]
            ana_token = (await _tokens(ana, base, client_id))["access_token"]
            bob_token = (await _tokens(bob, base, client_id))["access_token"]
            ana_calls = [(await _call(ana_http, base, ana_token)).status_code for _ in range(4)]
            bob_call = await _call(bob_http, base, bob_token)
    assert ana_calls == [200, 200, 200, 429]
    assert bob_call.status_code == 200


async def test_sign_in_endpoints_have_their_own_stricter_limit(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings(rate_limit_auth=2, rate_limit_ip=100)) as base:
            auth = [(await http.get(f"{base}/auth/me")).status_code for _ in range(3)]
            mcp = await _get_account(http, base)
            health = [(await http.get(f"{base}/healthz")).status_code for _ in range(5)]
    assert auth == [200, 200, 429]
    assert mcp.status_code == 200  # another bucket
    assert health == [200] * 5  # not limited


async def test_every_shine_process_counts_against_the_same_limit(
    shine_settings: Callable[..., Settings], clock: Clock, shine_port: int
) -> None:
    settings = shine_settings(rate_limit_ip=4)
    other_port = free_port()
    other = settings.model_copy(update={"port": other_port})
    async with httpx.AsyncClient() as http:
        with (
            serving(create_app(settings, Services(settings), clock=clock), shine_port) as first,
            serving(create_app(other, Services(other), clock=clock), other_port) as second,
        ):
            codes = [
                (await _get_account(http, base)).status_code for base in (first, second, first, second, first)
            ]
    assert codes == [200, 200, 200, 200, 429]


EXPECTED = [True, True, True, False, False, True]


async def _count_with(db_settings: Settings) -> list[bool]:
    db = await open_database(db_settings)
    now = datetime(2026, 11, 22, 12, 0, 10, tzinfo=UTC)
    times = [
        now,
        now,
        now,
        now + timedelta(seconds=40),
        now + timedelta(minutes=1),
        now + timedelta(minutes=2),
    ]
    position = iter(times)
    limiter = RateLimiter(db, lambda: next(position))
    try:
        return [(await limiter.hit([Limit("user:usr_ana", 3)])).allowed for _ in times]
    finally:
        await db.close()


async def test_the_sliding_window_counts_on_sqlite(tmp_path: Path) -> None:
    # 3 allowed; the 4th in the same minute refused; early in the next minute the last one still weighs in
    # (1 + 4 * 50/60 > 3); a minute after that, the estimate is 1 + 1 * 50/60 and passes.
    assert await _count_with(Settings(data_dir=tmp_path, database_url=None)) == EXPECTED


@pytest.mark.postgres
async def test_the_sliding_window_counts_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    assert await _count_with(Settings(data_dir=tmp_path, database_url=postgres_url)) == EXPECTED


@pytest.mark.postgres
async def test_counting_a_request_on_postgresql_is_one_round_trip(tmp_path: Path, postgres_url: str) -> None:
    """Every HTTP request is counted: its upsert is atomic on its own, so it runs without BEGIN and COMMIT
    around it (three round trips, the largest cost in a 2-worker load run's profile, issue 20)."""
    db = await open_database(Settings(data_dir=tmp_path, database_url=postgres_url))
    try:
        limiter = RateLimiter(db, lambda: datetime(2026, 1, 1, tzinfo=UTC))
        await limiter.hit([Limit("ip:203.0.113.5:mcp", 10)])  # the pool now holds a connection
        sent: list[str] = []
        async with db.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            driver.add_query_logger(lambda record: sent.append(record.query))
        verdict = await limiter.hit([Limit("ip:203.0.113.5:mcp", 10), Limit("user:usr_ana:mcp", 10)])
        assert verdict.allowed
        # asyncpg's logger shows simple queries (BEGIN, COMMIT), not the prepared upsert itself
        assert not [query for query in sent if query.startswith(("BEGIN", "COMMIT"))], sent
        sent.clear()
        async with db.engine.connect() as connection:  # the next unit of work has its transaction again
            await connection.execute(text("SELECT 1"))
        assert sent[0].startswith("BEGIN"), sent
    finally:
        await db.close()
