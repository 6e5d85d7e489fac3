"""A real `shine serve` process configured for Google sign-in (pointing at the Google fake) and a remote
MCP client built with the SDK's `OAuthClientProvider`: discovery, registration, sign-in at "Google",
consent, token, tool call, as a person would do it from Claude or the MCP Inspector."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.auth.conftest import GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET
from tests.auth.mcp_client import RemoteClient
from tests.auth.support import Browser, TLSFiles
from tests.fakes.google_oauth import FakeGoogle

ROOT = Path(__file__).resolve().parents[2]
SHINE = [sys.executable, "-m", "shine_cli.cli"]  # the `shine` command, without depending on its script

pytestmark = pytest.mark.slow


@pytest.fixture
def shine_serve(data_dir: Path, shine_port: int, fake_google: FakeGoogle, tls: TLSFiles) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHINE_", "DATABASE_URL", "GOOGLE_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "SHINE_DATA_DIR": str(data_dir),
            "GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": GOOGLE_CLIENT_SECRET,
            "SHINE_GOOGLE_DISCOVERY_URL": f"{fake_google.issuer}/.well-known/openid-configuration",
            "REQUESTS_CA_BUNDLE": str(tls.ca),
        }
    )
    process = subprocess.Popen(
        [*SHINE, "serve", "--host", "127.0.0.1", "--port", str(shine_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{shine_port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


async def _healthy(base: str) -> None:
    with anyio.fail_after(60):
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"{base}/healthz", timeout=2)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)


async def test_remote_client_signs_in_with_google_and_calls_a_tool(
    shine_serve: str, browser: Browser, fake_google: FakeGoogle
) -> None:
    await _healthy(shine_serve)
    unauthenticated = await browser.http.post(
        f"{shine_serve}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
    )
    assert unauthenticated.status_code == 401
    remote = RemoteClient(shine_serve, browser)
    with anyio.fail_after(60):
        async with remote.connect() as client:
            account = await client.call_tool("get_account", {})
            again = await client.call_tool("get_account", {})
    assert not account.is_error and account.structured_content is not None
    assert account.structured_content["email"] == fake_google.person.email
    assert account.structured_content["via"] == "oauth"
    assert again.structured_content == account.structured_content
    assert any("/o/oauth2/v2/auth" in u for u in browser.visited)  # the person met "Google"
    # Shine's tokens never went to Google: it only ever sent Google its own authorization code.
    assert remote.storage.tokens is not None
    sent_to_google = " ".join(str(r) for r in fake_google.token_requests)
    assert remote.storage.tokens.access_token not in sent_to_google
    assert {r["grant_type"] for r in fake_google.token_requests} == {"authorization_code"}
