"""Who is calling a tool: the one function every tool that touches personal data asks.

Transports differ, the answer's shape does not:
- `/mcp` with an OAuth access token: the token's subject, roles and granted scopes (Shine is its own
  authorization server; `shine_mcp.auth` issues and verifies the tokens);
- `/mcp` without a token: only while `/mcp` is unprotected (a keyless developer setup on loopback, see
  `shine_mcp.auth.policy.mcp_auth_required`) and only from this machine, as `SHINE_LOCAL_USER`;
- the web shell's in-process client: a signed identity in the request's `_meta` (`identity_meta`),
  which the web shell makes from the person's session cookie. Only honoured for calls that did not
  come over HTTP, so a remote client cannot claim one even with a stolen signature;
- stdio and in-process clients without a signed identity: `SHINE_LOCAL_USER`, the person who runs
  Shine on their own machine.
Every row that holds personal data stores `Caller.user_id`; every read filters by it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request

from shine_mcp.auth.keys import Keys
from shine_mcp.auth.policy import ADMIN, READ, SHOP, is_local_request, mcp_auth_required
from shine_mcp.config import Settings

IDENTITY_META_KEY = "shine/identity"
IDENTITY_TTL_SECONDS = 300
GUEST_PREFIX = "gst_"


@dataclass(frozen=True)
class Caller:
    user_id: str
    transport: Literal["stdio", "http"]
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"user"}))
    scopes: frozenset[str] = frozenset()
    # How the identity was established: the local user, an OAuth token, the web shell's signed identity,
    # or a keyless loopback call in a developer setup.
    source: Literal["local", "oauth", "web", "loopback"] = "local"
    client_id: str | None = None  # the OAuth client, for `source == "oauth"`

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_guest(self) -> bool:
        return self.user_id.startswith(GUEST_PREFIX)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _identity_key(secret: bytes | Settings) -> bytes:
    return Keys.load(secret).identity if isinstance(secret, Settings) else Keys.from_master(secret).identity


def identity_meta(
    user_id: str,
    secret: bytes | Settings,
    *,
    roles: Iterable[str] = ("user",),
    ttl: int = IDENTITY_TTL_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The `_meta` entry that makes an in-process tool call run as `user_id`.

    For the web shell, which knows the person from their session cookie:
    `await client.call_tool(name, args, meta=identity_meta(user.id, settings, roles=user.roles))`.
    `secret` is the `Settings` (its `SHINE_SECRET_KEY` or generated key) or that master key's bytes.
    The entry is an HMAC-SHA256-signed claim that expires after `ttl` seconds; remote callers cannot use
    one at all (`current_user` ignores it on HTTP requests)."""
    issued = time.time() if now is None else now
    claims = {"sub": user_id, "roles": sorted(set(roles)), "exp": int(issued + ttl)}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(_identity_key(secret), body.encode(), hashlib.sha256).digest())
    return {IDENTITY_META_KEY: f"{body}.{signature}"}


def read_identity(
    value: object, secret: bytes | Settings, *, now: float | None = None
) -> tuple[str, frozenset[str]]:
    """The (user id, roles) of a signed identity, or a ToolError when it is forged, altered or stale."""
    if not isinstance(value, str) or value.count(".") != 1:
        raise ToolError("the caller's identity is malformed; sign in again")
    body, signature = value.split(".")
    expected = _b64(hmac.new(_identity_key(secret), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise ToolError("the caller's identity is not signed by this server; sign in again")
    try:
        claims = json.loads(_unb64(body))
        user_id, roles, expires = str(claims["sub"]), frozenset(claims["roles"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolError("the caller's identity is malformed; sign in again") from exc
    if expires < (time.time() if now is None else now):
        raise ToolError("the caller's identity has expired; reload the page")
    return user_id, roles


def _request_of(ctx: Context[Any, Any] | None) -> Any:
    if ctx is None:
        return None
    try:
        return ctx.request_context.request
    except (AttributeError, ValueError, LookupError):
        return None


def _meta_of(ctx: Context[Any, Any] | None) -> Mapping[str, Any] | None:
    if ctx is None:
        return None
    try:
        return ctx.request_context.meta
    except (AttributeError, ValueError, LookupError):
        return None


def local_roles(settings: Settings) -> frozenset[str]:
    """The local user is a shopper; the operator makes them the shop's admin by opting into the merchant or
    admin toolset (`shine mcp --toolsets shopper,merchant`, `SHINE_TOOLSETS`)."""
    return frozenset({"user"} | ({"admin"} if set(settings.toolsets) - {"shopper"} else set()))


def local_scopes(settings: Settings) -> frozenset[str]:
    return frozenset({READ, SHOP} | ({ADMIN} if "admin" in local_roles(settings) else set()))


def caller_of(request: Any, meta: Mapping[str, Any] | None, settings: Settings) -> Caller:
    """`current_user` from the raw parts of a request: the HTTP request (None off HTTP) and its `_meta`."""
    if request is None:
        signed = (meta or {}).get(IDENTITY_META_KEY)
        if signed is not None:
            user_id, roles = read_identity(signed, settings)
            scopes = frozenset({READ, SHOP} | ({ADMIN} if "admin" in roles else set()))
            return Caller(user_id=user_id, transport="http", roles=roles, scopes=scopes, source="web")
        # stdio or in-process: the person running Shine locally owns everything here.
        return Caller(
            user_id=settings.local_user,
            transport="stdio",
            roles=local_roles(settings),
            scopes=local_scopes(settings),
        )
    user = request.scope.get("user")
    token = getattr(user, "access_token", None)
    if token is not None and getattr(token, "subject", None):
        claims = token.claims or {}
        return Caller(
            user_id=str(token.subject),
            transport="http",
            roles=frozenset(claims.get("roles") or ("user",)),
            scopes=frozenset(token.scopes),
            source="oauth",
            client_id=token.client_id,
        )
    client_host = request.client.host if request.client else None
    if not mcp_auth_required(settings) and is_local_request(client_host, request.headers):
        return Caller(
            user_id=settings.local_user,
            transport="http",
            roles=local_roles(settings),
            scopes=local_scopes(settings),
            source="loopback",
        )
    raise ToolError("sign in first: this Shine server needs an authenticated MCP client for personal data")


def http_user_id(scope: Mapping[str, Any], settings: Settings) -> str | None:
    """Who an HTTP request to `/mcp` comes from, from its ASGI scope once authenticated; None for no one."""
    try:
        return caller_of(Request(dict(scope)), None, settings).user_id
    except ToolError:
        return None


def current_user(ctx: Context[Any, Any] | None, settings: Settings) -> Caller:
    """The caller of this request, or a ToolError telling them how to sign in."""
    return caller_of(_request_of(ctx), _meta_of(ctx), settings)


def require_scope(caller: Caller, scope: str) -> None:
    """Refuse an OAuth client whose token was not granted `scope` (other callers hold every scope)."""
    if caller.source == "oauth" and scope not in caller.scopes:
        raise ToolError(f"this needs the {scope} permission; reconnect the MCP client and grant it")


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise ToolError("this tool is for the shop's admins; ask the merchant to run it")
    require_scope(caller, ADMIN)
