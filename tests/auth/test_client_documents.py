"""MCP clients identified by a Client ID Metadata Document (an https URL as `client_id`) instead of
registering: fetched, checked and cached by Shine, with SSRF protection."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shine_mcp.auth import audit
from shine_mcp.auth.cimd import ClientDocumentError, fetch_client_document
from shine_mcp.config import Settings
from shine_mcp.integrations.public_http import AddressPolicy, PublicHTTP
from tests.auth.mcp_client import REDIRECT_URI, RemoteClient
from tests.auth.support import Browser, TLSFiles, serving
from tests.fakes.dns import ScriptedDNS, answering
from tests.fakes.inside_service import listening
from tests.support.postgres import free_port

RunShine = Callable[[Settings], AbstractContextManager[str]]


class DocumentHost:
    """An https site publishing client metadata documents; tests edit `documents` and read `fetches`."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.fetches = 0
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def app(self) -> Starlette:
        async def document(request: Request) -> JSONResponse:
            self.fetches += 1
            body = self.documents.get(request.url.path)
            if body is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(body, headers={"Cache-Control": "max-age=600"})

        return Starlette(routes=[Route("/{path:path}", document)])


@pytest.fixture
def document_host(tls: TLSFiles, trust_test_ca: None) -> Iterator[DocumentHost]:
    host = DocumentHost()
    with serving(host.app(), free_port(), tls) as base:
        host.base = base
        yield host


def client_document(url: str, **changes: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "Doc Client",
        "client_uri": "https://doc-client.example",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **changes,
    }


async def test_a_client_with_a_metadata_document_needs_no_registration(
    run_shine: RunShine,
    shine_settings: Callable[..., Settings],
    browser: Browser,
    document_host: DocumentHost,
    inspect_db,
) -> None:
    url = document_host.url("/oauth/client.json")
    document_host.documents["/oauth/client.json"] = client_document(url)
    settings = shine_settings(mcp_auth="required")
    with run_shine(settings) as base:
        remote = RemoteClient(base, browser, client_metadata_url=url)
        async with remote.connect() as client:
            account = await client.call_tool("get_account", {})
        consent = next(u for u in browser.visited if "/auth/consent?" in u)
        assert consent
    assert not account.is_error and account.structured_content
    assert account.structured_content["email"] == "ana@example.com"
    assert remote.storage.client_info is not None and remote.storage.client_info.client_id == url
    db = await inspect_db(settings)
    actions = [e.action for e in await audit.events(db)]
    assert "client_registered" not in actions and "token_issued" in actions
    assert document_host.fetches == 1  # cached for the token request that followed


async def test_the_consent_page_names_the_documents_host(
    run_shine: RunShine,
    shine_settings: Callable[..., Settings],
    browser: Browser,
    document_host: DocumentHost,
) -> None:
    url = document_host.url("/oauth/client.json")
    document_host.documents["/oauth/client.json"] = client_document(url)
    browser.decision = None
    query = {
        "response_type": "code",
        "client_id": url,
        "redirect_uri": REDIRECT_URI,
        "state": "s",
        "code_challenge": "c" * 43,
    }
    with run_shine(shine_settings(mcp_auth="required")) as base:
        page = await browser.go(f"{base}/authorize?{urlencode(query)}")
    assert isinstance(page, httpx.Response) and page.status_code == 200
    assert "identified by <strong>127.0.0.1:" in page.text and "Doc Client" in page.text


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "https://someone-else.example/client.json"},
        {"client_secret": "shh", "token_endpoint_auth_method": "client_secret_post"},
        {"redirect_uris": ["http://evil.example/callback"]},
        {"redirect_uris": []},
        {"grant_types": ["client_credentials"]},
    ],
    ids=["client-id-elsewhere", "secret", "unsafe-redirect", "no-redirect", "no-code-grant"],
)
async def test_an_unfit_metadata_document_is_refused(
    run_shine: RunShine,
    shine_settings: Callable[..., Settings],
    browser: Browser,
    document_host: DocumentHost,
    changes: dict[str, Any],
) -> None:
    url = document_host.url("/oauth/client.json")
    document_host.documents["/oauth/client.json"] = client_document(url, **changes)
    query = {
        "response_type": "code",
        "client_id": url,
        "redirect_uri": REDIRECT_URI,
        "state": "s",
        "code_challenge": "c" * 43,
    }
    with run_shine(shine_settings(mcp_auth="required")) as base:
        response = await browser.http.get(f"{base}/authorize?{urlencode(query)}")
    assert response.status_code == 400 and "location" not in response.headers
    assert "not found" in response.json()["error_description"]


async def test_documents_on_private_addresses_are_refused_for_a_public_shine(
    document_host: DocumentHost,
) -> None:
    url = document_host.url("/oauth/client.json")
    document_host.documents["/oauth/client.json"] = client_document(url)
    with pytest.raises(ClientDocumentError, match="127.0.0.1 is a loopback address"):
        await fetch_client_document(url, allow_private=False)
    client, _ = await fetch_client_document(url, allow_private=True)
    assert client.client_id == url and client.token_endpoint_auth_method == "none"


async def test_an_oversized_document_is_refused(document_host: DocumentHost) -> None:
    url = document_host.url("/big.json")
    document_host.documents["/big.json"] = client_document(url, padding="x" * 20_000)
    with pytest.raises(ClientDocumentError, match="larger than"):
        await fetch_client_document(url, allow_private=True)


async def test_a_rebinding_name_is_fetched_only_from_the_address_that_was_checked(
    document_host: DocumentHost, tls: TLSFiles
) -> None:
    """An anonymous `/authorize?client_id=https://…` makes Shine fetch that URL. The name's DNS first
    answers an allowed address (127.0.0.1 stands in for a public one), then an inside one (127.0.0.2, where
    an internal service listens): the fetch must use the address it checked, never the second answer."""
    port = int(document_host.base.rsplit(":", 1)[1])
    url = f"https://localhost:{port}/oauth/client.json"
    document_host.documents["/oauth/client.json"] = client_document(url)
    dns = ScriptedDNS({"localhost": [["127.0.0.1"], ["127.0.0.2"]]})
    http = PublicHTTP(
        policy=AddressPolicy.allowing(["127.0.0.1/32"]),  # test-only: the fake stands in for a public host
        resolver=dns,
        ssl_context=ssl.create_default_context(cafile=str(tls.ca)),
    )
    with listening("127.0.0.2", port) as inside:
        client, _ = await fetch_client_document(url, allow_private=False, http=http)
        assert client.client_id == url and document_host.fetches == 1
        assert dns.lookups == ["localhost"]
        with pytest.raises(ClientDocumentError, match="localhost resolves to 127.0.0.2, a loopback"):
            await fetch_client_document(url, allow_private=False, http=http)
        assert not inside.reached()
    assert document_host.fetches == 1


@pytest.mark.parametrize(
    ("address", "reason", "allow_private"),
    [
        ("::ffff:127.0.0.1", "loopback", False),  # IPv4-mapped
        ("64:ff9b::7f00:1", "loopback", False),  # NAT64
        ("64:ff9b::a00:1", "private network", False),
        ("2002:7f00:1::1", "loopback", False),  # 6to4
        ("fec0::1", "site-local", False),
        ("224.0.0.1", "multicast", False),
        ("ff0e::1", "multicast", False),
        # a Shine that only this machine can reach may read documents from private networks, not these
        ("224.0.0.1", "multicast", True),
        ("169.254.169.254", "link-local", True),
        ("64:ff9b::a9fe:a9fe", "link-local", True),
    ],
)
async def test_documents_behind_hidden_inside_addresses_are_refused(
    address: str, reason: str, allow_private: bool
) -> None:
    url = "https://client.example/oauth/client.json"
    http = PublicHTTP(resolver=answering(**{"client.example": [address]}))
    with pytest.raises(ClientDocumentError) as caught:
        await fetch_client_document(url, allow_private=allow_private, http=http)
    assert f"client.example resolves to {ipaddress.ip_address(address)}, " in str(caught.value)
    assert reason in str(caught.value)
