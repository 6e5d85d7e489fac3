"""A remote MCP client as a real one is built: the SDK's `OAuthClientProvider` on an httpx2 client, with a
`redirect_handler` that lets the test browser walk the person through sign-in and consent."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, OAuthFlowError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from tests.auth.support import Browser

REDIRECT_URI = (
    "http://127.0.0.1:53682/callback"  # the client's own loopback listener; the browser stops there
)


@dataclass(frozen=True)
class ManualGrant:
    """The authorization-code flow by hand (PKCE S256), for tests that drive the browser part themselves."""

    base: str
    client_id: str
    scope: str = "shine:read shine:shop"
    state: str = "s1"
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def authorize_url(self) -> str:
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).decode().rstrip("=")
        )
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{self.base}/mcp",
            "scope": self.scope,
        }
        return f"{self.base}/authorize?{urlencode(query)}"

    def code_from(self, landed: str) -> str:
        """The code in the redirect the browser landed on, after checking its state and issuer."""
        answer = {k: v[0] for k, v in parse_qs(urlsplit(landed).query).items()}
        assert answer["state"] == self.state and answer["iss"] == self.base, answer
        return answer["code"]

    def token_form(self, code: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
            "resource": f"{self.base}/mcp",
        }


@dataclass
class MemoryStorage:
    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class RemoteClient:
    base: str
    browser: Browser
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    client_metadata_url: str | None = None
    client_name: str = "Test MCP client"
    auth_method: str = "client_secret_post"
    redirects: list[str] = field(default_factory=list)

    def provider(self) -> OAuthClientProvider:
        landed: list[str] = []

        async def redirect_handler(url: str) -> None:
            self.redirects.append(url)
            stop = await self.browser.go(url, stop_at=lambda u: u.startswith(REDIRECT_URI))
            if not isinstance(stop, str):
                raise OAuthFlowError(f"the browser did not come back to the client: HTTP {stop.status_code}")
            landed.append(stop)

        async def callback_handler() -> AuthorizationCodeResult:
            query = parse_qs(urlsplit(landed.pop()).query)
            if "error" in query:
                raise OAuthFlowError(f"authorization refused: {query['error'][0]}")
            return AuthorizationCodeResult(
                code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0]
            )

        metadata = OAuthClientMetadata(
            client_name=self.client_name,
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method=self.auth_method,  # type: ignore[arg-type]
        )
        return OAuthClientProvider(
            server_url=f"{self.base}/mcp",
            client_metadata=metadata,
            storage=self.storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
            client_metadata_url=self.client_metadata_url,
        )

    @asynccontextmanager
    async def connect(
        self, provider: OAuthClientProvider | None = None, *, mode: str = "auto"
    ) -> AsyncIterator[Client]:
        """`mode="legacy"` speaks 2025-11-25 (a session, SSE streams); "auto" negotiates 2026-07-28."""
        auth = provider or self.provider()
        async with (
            httpx2.AsyncClient(auth=auth, timeout=30) as http,
            Client(streamable_http_client(f"{self.base}/mcp", http_client=http), mode=mode) as client,
        ):
            yield client
