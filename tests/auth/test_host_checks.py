"""DNS-rebinding protection on every route: a request whose `Host` is not this Shine's gets `421` and
nothing else, whatever the path; loopback and the names the merchant configured are answered, by the
front door and by the MCP SDK's own check on `/mcp` alike."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest
from mcp.server.transport_security import TransportSecurityMiddleware
from sqlalchemy import select
from starlette.requests import Request

from shine_mcp.auth.hosts import allowed_hosts, host_allowed, transport_security
from shine_mcp.config import Settings
from shine_mcp.store.users import WebSession
from tests.conftest import make_settings

RunShine = Callable[[Settings], AbstractContextManager[str]]
REBOUND = "shine.rebind.example"  # a name an attacker points at 127.0.0.1 after the page has loaded

EVERY_KIND_OF_ROUTE = [
    ("GET", "/healthz"),
    ("GET", "/"),
    ("GET", "/widget.js"),
    ("GET", "/auth/me"),
    ("GET", "/auth/dev"),
    ("POST", "/auth/dev"),
    ("GET", "/auth/login"),
    ("GET", "/api/my-data"),
    ("POST", "/api/chat"),
    ("GET", "/checkout/success?session_id=cs_test_x"),
    ("GET", "/checkout/cancel?order_id=ord_x"),
    ("POST", "/stripe/webhook"),
    ("POST", "/mcp"),
]


@pytest.mark.parametrize(("method", "path"), EVERY_KIND_OF_ROUTE, ids=[p for _, p in EVERY_KIND_OF_ROUTE])
async def test_a_rebound_host_name_gets_421_on_every_route(
    run_shine: RunShine, shine_settings: Callable[..., Settings], shine_port: int, method: str, path: str
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings()) as base:
            response = await http.request(
                method, f"{base}{path}", headers={"Host": f"{REBOUND}:{shine_port}"}
            )
    assert response.status_code == 421
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "This server does not answer to that host name.\n"
    assert "set-cookie" not in response.headers


async def test_the_dev_sign_in_cannot_be_used_through_a_rebound_name(
    run_shine: RunShine, shine_settings: Callable[..., Settings], shine_port: int, inspect_db
) -> None:
    """The attack the finding describes: the attacker's page, now resolving to 127.0.0.1, signs the
    visitor in as the attacker's email and reads their data; none of it may answer."""
    settings = shine_settings()
    rebound = {"Host": f"{REBOUND}:{shine_port}"}
    async with httpx.AsyncClient() as http:
        with run_shine(settings) as base:
            form = await http.get(f"{base}/auth/dev", headers=rebound)
            posted = await http.post(
                f"{base}/auth/dev", data={"email": "mallory@example.com"}, headers=rebound
            )
            data = await http.get(f"{base}/api/my-data", headers=rebound)
    assert (form.status_code, posted.status_code, data.status_code) == (421, 421, 421)
    db = await inspect_db(settings)
    async with db.session() as session:
        assert (await session.execute(select(WebSession))).first() is None


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}", "127.0.0.1"]
)
async def test_loopback_names_are_answered(
    run_shine: RunShine, shine_settings: Callable[..., Settings], shine_port: int, host: str
) -> None:
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings()) as base:
            health = await http.get(f"{base}/healthz", headers={"Host": host.format(port=shine_port)})
    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_the_public_url_and_allowed_hosts_are_answered_and_nothing_else(
    run_shine: RunShine, shine_settings: Callable[..., Settings]
) -> None:
    """Behind a proxy the Host is the public name: it comes from SHINE_PUBLIC_URL, extra names from
    SHINE_ALLOWED_HOSTS (an entry with a port allows only that port)."""
    settings = shine_settings(
        public_url="https://shine.example.com", allowed_hosts=["Shop.Example", "alt.example:8443"]
    )
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient() as http:
        with run_shine(settings) as base:
            for host in [
                "shine.example.com",
                "shine.example.com:443",
                "shop.example",
                "alt.example:8443",
                "alt.example:9000",
                "example.com",
                "shine.example.com.evil.example",
                "",
            ]:
                statuses[host] = (await http.get(f"{base}/healthz", headers={"Host": host})).status_code
    assert statuses == {
        "shine.example.com": 200,
        "shine.example.com:443": 200,
        "shop.example": 200,
        "alt.example:8443": 200,
        "alt.example:9000": 421,
        "example.com": 421,
        "shine.example.com.evil.example": 421,
        "": 421,
    }


async def test_a_refused_host_is_logged_once_naming_the_settings(
    run_shine: RunShine,
    shine_settings: Callable[..., Settings],
    shine_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="shine.auth")
    async with httpx.AsyncClient() as http:
        with run_shine(shine_settings()) as base:
            for _ in range(3):
                await http.get(f"{base}/healthz", headers={"Host": "shop.example"})
    lines = [r.getMessage() for r in caplog.records if r.name == "shine.auth"]
    assert len(lines) == 1
    assert (
        "'shop.example'" in lines[0] and "SHINE_ALLOWED_HOSTS" in lines[0] and "SHINE_PUBLIC_URL" in lines[0]
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"public_url": "https://shine.example.com"},
        {"allowed_hosts": ["shop.example", "alt.example:8443"]},
    ],
    ids=["loopback", "public-url", "allowed-hosts"],
)
async def test_mcp_s_own_check_agrees_with_the_front_door(tmp_path, overrides: dict[str, object]) -> None:
    """The SDK checks `/mcp` again with `transport_security(settings)`: built from the same list, it must
    accept every name the front door accepts (or `/mcp` would answer 421 behind the proxy)."""
    settings = make_settings(tmp_path, **overrides)
    sdk = TransportSecurityMiddleware(transport_security(settings))
    hosts = allowed_hosts(settings)
    for host in [
        "127.0.0.1:8000",
        "localhost:8000",
        "[::1]:8000",
        "localhost",
        "shine.example.com",
        "shine.example.com:443",
        "shop.example",
        "shop.example:8443",
        "alt.example:8443",
        "alt.example:9000",
        "evil.example",
    ]:
        scope = {"type": "http", "method": "GET", "path": "/mcp", "headers": [(b"host", host.encode())]}
        refused = await sdk.validate_request(Request(scope))
        assert (refused is None) is host_allowed(host, hosts), host
