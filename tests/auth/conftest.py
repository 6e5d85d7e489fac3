"""Fixtures for the sign-in tests: the Google fake over TLS, a Shine served from a thread with a settable
clock, and a browser."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store.db import Database, open_database
from tests.auth.support import Browser, Clock, TLSFiles, make_tls, serving
from tests.conftest import make_settings
from tests.fakes import google_oauth
from tests.support.postgres import free_port
from web_shell.app import create_app

GOOGLE_CLIENT_ID = "1234-shine-test.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-not-a-real-secret"


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust_test_ca(tls: TLSFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `requests` (Google libraries) and `httpx2` (client metadata documents) trust the test CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))


@pytest.fixture
def shine_port() -> int:
    return free_port()


@pytest.fixture
def fake_google(tls: TLSFiles, trust_test_ca: None, shine_port: int) -> Iterator[google_oauth.FakeGoogle]:
    google = google_oauth.FakeGoogle(
        client_id=GOOGLE_CLIENT_ID,
        client_secret=GOOGLE_CLIENT_SECRET,
        redirect_uris=[f"http://127.0.0.1:{shine_port}/auth/google/callback"],
    )
    with serving(google_oauth.create_app(google), free_port(), tls) as url:
        google.issuer = url
        yield google


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data_dir(tmp_path: Path, demo_database_template: Path) -> Path:
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    return tmp_path


@pytest.fixture
def shine_settings(data_dir: Path, shine_port: int) -> Callable[..., Settings]:
    """Settings for a Shine on `shine_port`; tests name what they change."""

    def build(**overrides: Any) -> Settings:
        return make_settings(data_dir, host="127.0.0.1", port=shine_port, **overrides)

    return build


@pytest.fixture
def google_settings(
    shine_settings: Callable[..., Settings], fake_google: google_oauth.FakeGoogle
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return shine_settings(
            google_client_id=GOOGLE_CLIENT_ID,
            google_client_secret=GOOGLE_CLIENT_SECRET,
            google_discovery_url=f"{fake_google.issuer}/.well-known/openid-configuration",
            **overrides,
        )

    return build


@pytest.fixture
def run_shine(shine_port: int, clock: Clock) -> Callable[[Settings], AbstractContextManager[str]]:
    """Serve `create_app(settings)` on `shine_port` with the test clock; yields the base URL."""

    @contextmanager
    def run(settings: Settings) -> Iterator[str]:
        with serving(create_app(settings, Services(settings), clock=clock), shine_port) as url:
            yield url

    return run


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield Browser(http)


@pytest.fixture
async def inspect_db(data_dir: Path) -> AsyncIterator[Callable[[Settings], Any]]:
    """Open the database a served Shine uses, from the test's own event loop, to check what it stored."""
    opened: list[Database] = []

    async def open_(settings: Settings) -> Database:
        db = await open_database(settings)
        opened.append(db)
        return db

    yield open_
    for db in opened:
        await db.close()
