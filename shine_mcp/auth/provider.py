"""Shine as an OAuth 2.1 authorization server for remote MCP clients, on the MCP SDK's framework
(`mcp.server.auth`): the SDK runs `/authorize`, `/token`, `/register` and `/revoke` and calls this provider.

The person signs in with Google (or the loopback dev sign-in) and approves the client on Shine's consent
page (`web_shell/auth.py`), which calls `approve`/`deny` here. Tokens are Shine's own, opaque and bound to
`<base URL>/mcp`; nothing from Google is handed to a client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from shine_mcp.auth import audit, tokens
from shine_mcp.auth.accounts import get_user, stored_roles
from shine_mcp.auth.clients import Clients
from shine_mcp.auth.keys import Keys, token_hash
from shine_mcp.auth.policy import (
    REQUEST_SECONDS,
    SCOPES,
    grantable_scopes,
    issuer,
    resource_url,
    roles_for,
    same_resource,
)
from shine_mcp.clock import aware
from shine_mcp.config import Settings
from shine_mcp.store.db import Database

log = logging.getLogger("shine.auth")

# The front door (`gate.py`) verifies a bearer token once per request; the SDK's bearer middleware asks
# again further in, and gets this answer instead of a second database lookup.
_verified: ContextVar[tuple[str, AccessToken | None] | None] = ContextVar(
    "shine_verified_token", default=None
)


class ShineCode(AuthorizationCode):
    family_id: str


class ShineRefreshToken(RefreshToken):
    token_id: str
    family_id: str


class ShineAccessToken(AccessToken):
    family_id: str


@dataclass(frozen=True)
class PendingAuthorization:
    """An authorization request as the consent page shows it."""

    id: str
    client: OAuthClientInformationFull
    scopes: list[str]
    redirect_uri: str


class ShineAuthProvider(OAuthAuthorizationServerProvider[ShineCode, ShineRefreshToken, ShineAccessToken]):
    def __init__(self, settings: Settings, db: Database, keys: Keys, clock: Callable[[], datetime]) -> None:
        self.settings, self._db, self.keys, self.clock = settings, db, keys, clock
        self.issuer, self.resource = issuer(settings), resource_url(settings)
        self.clients = Clients(settings, db, keys, clock)

    # --- clients (the SDK asks the provider; `Clients` knows them) --------------------------------
    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return await self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self.clients.register(client_info)

    # --- authorization -----------------------------------------------------------------------
    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and not same_resource(params.resource, self.resource):
            raise AuthorizeError("invalid_target", f"this server issues tokens only for {self.resource}")
        unknown = [s for s in params.scopes or [] if s not in SCOPES]
        if unknown:
            raise AuthorizeError(
                "invalid_scope", f"unknown scope {unknown[0]}; this server offers {' '.join(SCOPES)}"
            )
        now = self.clock()
        request_id = await tokens.save_request(
            self._db,
            client_id=client.client_id,
            params={
                "redirect_uri": str(params.redirect_uri),
                "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
                "scopes": params.scopes or [],
                "code_challenge": params.code_challenge,
                "state": params.state,
            },
            expires_at=now + timedelta(seconds=REQUEST_SECONDS),
        )
        return f"{self.settings.base_url}/auth/consent?request={request_id}"

    async def pending(self, request_id: str) -> PendingAuthorization | None:
        row = await tokens.find_request(self._db, request_id, now=self.clock())
        if row is None:
            return None
        client = await self.get_client(row.client_id)
        if client is None:
            return None
        return PendingAuthorization(
            row.id, client, list(row.params["scopes"]), str(row.params["redirect_uri"])
        )

    async def approve(
        self, request_id: str, user_id: str, roles: frozenset[str], ip: str | None
    ) -> str | None:
        """Issue a code for an approved request; the client's redirect URL, or None if the request is gone."""
        now = self.clock()
        row = await tokens.take_request(self._db, request_id, now=now)
        if row is None:
            return None
        params = row.params
        granted = grantable_scopes(params["scopes"], roles)
        if not granted:
            return self._answer(
                params, error="access_denied", error_description="your account cannot grant these"
            )
        code = await tokens.create_code(
            self._db,
            client_id=row.client_id,
            user_id=user_id,
            scopes=granted,
            code_challenge=params["code_challenge"],
            redirect_uri=params["redirect_uri"],
            redirect_uri_provided_explicitly=params["redirect_uri_provided_explicitly"],
            resource=self.resource,
            now=now,
        )
        await audit.record(
            self._db,
            "consent_granted",
            actor_id=user_id,
            client_id=row.client_id,
            ip=ip,
            at=now,
            scopes=granted,
        )
        return self._answer(params, code=code)

    async def deny(self, request_id: str, user_id: str | None, ip: str | None) -> str | None:
        now = self.clock()
        row = await tokens.take_request(self._db, request_id, now=now)
        if row is None:
            return None
        await audit.record(
            self._db, "consent_denied", actor_id=user_id, client_id=row.client_id, ip=ip, at=now
        )
        return self._answer(row.params, error="access_denied", error_description="the person declined")

    def _answer(self, params: dict[str, object], **fields: str) -> str:
        # RFC 9207: `iss` tells the client which authorization server answered (mix-up defence).
        state = params.get("state")
        return construct_redirect_uri(
            str(params["redirect_uri"]),
            state=str(state) if state is not None else None,
            iss=self.issuer,
            **fields,
        )

    # --- codes and tokens ------------------------------------------------------------------------
    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> ShineCode | None:
        row = await tokens.find_code(self._db, authorization_code)
        if row is None or row.client_id != client.client_id:
            return None
        now = self.clock()
        if row.used_at is not None:
            revoked = await tokens.revoke_family(self._db, row.family_id, now=now)
            await audit.record(
                self._db,
                "code_replayed",
                actor_id=row.user_id,
                client_id=row.client_id,
                at=now,
                revoked=revoked,
            )
            return None
        if aware(row.expires_at) <= now:
            return None
        return ShineCode(
            code=authorization_code,
            scopes=row.scopes.split(),
            expires_at=aware(row.expires_at).timestamp(),
            client_id=row.client_id,
            code_challenge=row.code_challenge,
            redirect_uri=AnyUrl(row.redirect_uri),
            redirect_uri_provided_explicitly=row.redirect_uri_provided_explicitly,
            resource=row.resource,
            subject=row.user_id,
            family_id=row.family_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: ShineCode
    ) -> OAuthToken:
        now = self.clock()
        code_hash = token_hash(authorization_code.code)
        if not await tokens.spend_code(self._db, code_hash, now=now):
            raise TokenError("invalid_grant", "authorization code was already used")
        user_id = authorization_code.subject or ""
        if await get_user(self._db, user_id) is None:
            raise TokenError("invalid_grant", "the account that approved this client no longer exists")
        issued = await tokens.issue(
            self._db,
            family_id=authorization_code.family_id,
            client_id=client.client_id,
            user_id=user_id,
            scopes=authorization_code.scopes,
            resource=authorization_code.resource or self.resource,
            with_refresh="refresh_token" in client.grant_types,
            now=now,
        )
        assert issued is not None
        await audit.record(
            self._db,
            "token_issued",
            actor_id=user_id,
            client_id=client.client_id,
            at=now,
            scopes=issued.scopes,
        )
        await tokens.sweep(self._db, now=now)
        return self._token_response(issued)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> ShineRefreshToken | None:
        row = await tokens.find_token(self._db, refresh_token, "refresh")
        if row is None or row.client_id != client.client_id:
            return None
        now = self.clock()
        if row.used_at is not None and row.revoked_at is None:
            await self._reused(row.family_id, row.user_id, row.client_id, now)
            return None
        if not tokens.live(row, now):
            return None
        return ShineRefreshToken(
            token=refresh_token,
            client_id=row.client_id,
            scopes=row.scopes.split(),
            expires_at=int(aware(row.expires_at).timestamp()),
            resource=row.resource,
            subject=row.user_id,
            token_id=row.id,
            family_id=row.family_id,
        )

    async def _reused(self, family_id: str, user_id: str, client_id: str, now: datetime) -> None:
        revoked = await tokens.revoke_family(self._db, family_id, now=now)
        log.warning("refresh token reused: revoked %d tokens of client %s", revoked, client_id)
        await audit.record(
            self._db, "refresh_token_reused", actor_id=user_id, client_id=client_id, at=now, revoked=revoked
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: ShineRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        now = self.clock()
        row = await tokens.find_token(self._db, refresh_token.token, "refresh")
        if row is None or not tokens.live(row, now):
            raise TokenError("invalid_grant", "refresh token is no longer valid")
        if await get_user(self._db, row.user_id) is None:
            raise TokenError("invalid_grant", "the account behind this token no longer exists")
        issued = await tokens.issue(
            self._db,
            family_id=row.family_id,
            client_id=client.client_id,
            user_id=row.user_id,
            scopes=scopes,
            resource=row.resource,
            with_refresh=True,
            now=now,
            rotating=row,
        )
        if issued is None:  # spent a moment ago by another request: the same token was used twice
            await self._reused(row.family_id, row.user_id, row.client_id, now)
            raise TokenError("invalid_grant", "refresh token was already used; sign in again")
        await audit.record(
            self._db,
            "token_refreshed",
            actor_id=row.user_id,
            client_id=client.client_id,
            at=now,
            scopes=scopes,
        )
        return self._token_response(issued)

    def _token_response(self, issued: tokens.Issued) -> OAuthToken:
        return OAuthToken(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            scope=" ".join(issued.scopes),
            refresh_token=issued.refresh_token,
        )

    async def load_access_token(self, token: str) -> ShineAccessToken | None:
        cached = _verified.get()
        if cached is not None and cached[0] == token:
            return cached[1]  # type: ignore[return-value]
        found = await tokens.find_access_token(self._db, token)
        if found is None or not tokens.live(found[0], self.clock()):
            return None
        row, user = found
        roles = roles_for(stored_roles(user), user.email, self.settings)
        return ShineAccessToken(
            token=token,
            client_id=row.client_id,
            scopes=row.scopes.split(),
            expires_at=int(aware(row.expires_at).timestamp()),
            resource=row.resource,
            subject=row.user_id,
            claims={"iss": self.issuer, "roles": sorted(roles)},
            family_id=row.family_id,
        )

    async def revoke_token(self, token: ShineAccessToken | ShineRefreshToken) -> None:
        now = self.clock()
        revoked = await tokens.revoke_family(self._db, token.family_id, now=now)
        await audit.record(
            self._db,
            "token_revoked",
            actor_id=token.subject,
            client_id=token.client_id,
            at=now,
            revoked=revoked,
        )

    def remember(self, token: str, verified: AccessToken | None) -> object:
        """Keep this request's verification for the SDK's own check further in; pass the result to `forget`."""
        return _verified.set((token, verified))

    def forget(self, marker: object) -> None:
        _verified.reset(marker)  # type: ignore[arg-type]
