"""Many people writing at once on the embedded SQLite database: every rate-limit hit is counted and every
chat turn is stored, even while the server's event loop is busy with other work; and a reply that could
not be stored says so to the shopper."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from shine_mcp.auth.ratelimit import Limit, RateLimiter
from shine_mcp.auth.sessions import create_session
from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.store import chat as store
from shine_mcp.store import db as db_module
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.users import RateLimitBucket
from tests.advisor.web import SSE, GatedModel, post_chat, shine_web
from tests.conftest import make_settings

SHOPPERS = 40
TURNS = 3


@asynccontextmanager
async def busy_event_loop(tasks: int = 6, slice_seconds: float = 0.01) -> AsyncIterator[None]:
    """Other requests' CPU work (parsing, rendering, the advisor): tasks that each hold the event loop for
    `slice_seconds` at a time, so every await of a database call waits its turn like on a loaded server."""
    stop = anyio.Event()

    async def hog() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            while time.perf_counter() - started < slice_seconds:
                pass
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(hog)
        try:
            yield
        finally:
            stop.set()


async def shopper(db: Database, settings: Settings, limiter: RateLimiter, n: int) -> None:
    """What one chat shopper writes: a guest session, a rate-limit hit per request, a chat, a save per turn."""
    now = utcnow()
    limits = [Limit(f"ip:127.0.0.{n % 4}:all", 1_000_000), Limit(f"user:gst_{n}", 1_000_000)]
    await limiter.hit(limits)
    await create_session(db, settings, f"gst_{n}", now=now, guest=True)
    chat = await store.create_chat(db, f"gst_{n}", now=now)
    for turn in range(TURNS):
        await limiter.hit(limits)
        saved = await store.save_chat(
            db,
            f"gst_{n}",
            chat.id,
            {"messages": [{"role": "user", "content": [{"type": "text", "text": f"turn {turn}"}]}] * 40},
            version=turn,
            advisor="offline advisor",
            now=now + timedelta(seconds=turn),
        )
        assert saved, f"turn {turn} of shopper {n} was refused as a conflict"


async def failing_to(
    failures: list[Exception], db: Database, settings: Settings, limiter: RateLimiter, n: int
) -> None:
    try:
        await shopper(db, settings, limiter, n)
    except Exception as error:  # collected rather than cancelling the others mid-write
        failures.append(error)


async def test_concurrent_rate_limit_hits_and_chat_saves_are_all_stored(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, load_demo_catalog=False)
    db = await open_database(settings)
    started = utcnow()
    limiter = RateLimiter(db, lambda: started)  # one window: every hit lands in one counter
    failures: list[Exception] = []
    try:
        with anyio.fail_after(120):
            async with busy_event_loop(), anyio.create_task_group() as shoppers:
                for n in range(SHOPPERS):
                    shoppers.start_soon(failing_to, failures, db, settings, limiter, n)
        assert failures == []

        async with db.session() as session:
            versions = (await session.execute(select(col(store.ChatSession.version)))).scalars().all()
            ip_hits = (
                await session.execute(
                    select(func.sum(RateLimitBucket.count)).where(col(RateLimitBucket.key).like("ip:%"))
                )
            ).scalar_one()
        assert sorted(versions) == [TURNS] * SHOPPERS  # every turn of every shopper is stored
        assert ip_hits == SHOPPERS * (TURNS + 1)  # every request was counted
    finally:
        await db.close()


def test_a_reply_that_could_not_be_stored_tells_the_shopper_so(
    tmp_path: Path, demo_database_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process holds the write lock past the writer's patience (shortened here, like a clock).
    monkeypatch.setattr(db_module, "WRITE_PATIENCE_SECONDS", 0.3)
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_SECONDS", 0)
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    model = GatedModel(before="Here is ", after="my answer.")
    outcome: list[list[SSE]] = []
    with shine_web(tmp_path, model=model) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        reading = threading.Thread(target=lambda: outcome.append(post_chat(client, {"message": "hi"})[1]))
        reading.start()
        assert model.started.wait(30)
        other_process = sqlite3.connect(tmp_path / "shine.db", timeout=0)
        try:
            other_process.execute("BEGIN IMMEDIATE")
            model.gate.set()
            reading.join(30)
        finally:
            other_process.rollback()
            other_process.close()
        history = client.get("/api/chat").json()

    events = outcome[0]
    shown = "".join(e.data.get("text", "") for e in events if e.event == "text")
    assert shown == "Here is my answer."
    assert [e.data["code"] for e in events if e.event == "error"] == ["not_saved"]
    assert events[-1].event == "done"
    assert history["messages"] == []  # and indeed nothing was stored


def test_a_request_the_database_is_too_busy_to_count_gets_503_with_retry_after(
    tmp_path: Path, demo_database_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "WRITE_PATIENCE_SECONDS", 0.3)
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_SECONDS", 0)
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    with shine_web(tmp_path) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        other_process = sqlite3.connect(tmp_path / "shine.db", timeout=0)
        try:
            other_process.execute("BEGIN IMMEDIATE")
            busy = client.get("/api/chat")
        finally:
            other_process.rollback()
            other_process.close()
        after = client.get("/api/chat")

    assert busy.status_code == 503 and busy.json()["error"] == "busy"
    assert busy.headers["retry-after"] == "2"
    assert after.status_code == 200
