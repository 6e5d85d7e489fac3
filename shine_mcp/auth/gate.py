"""The front door: one ASGI middleware in front of the web shell that refuses foreign `Host` headers,
rate-limits, authenticates `/mcp` with Shine's OAuth access tokens and reads the web session cookie (or, from
a shop's own site, the widget's bearer token) for `/api/*`.

Order matters: the Host check runs first, on every path (DNS rebinding: a page on another site whose
name resolves to this machine must get nothing, not even `/healthz`); then the per-IP limit, before any
token or cookie lookup (so floods cost one counter update); then the caller is identified, then the
per-user limit and the scope check run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shine_mcp.auth.hosts import allowed_hosts, host_allowed
from shine_mcp.auth.policy import ADMIN, DEFAULT_SCOPES, READ, SHOP
from shine_mcp.auth.ratelimit import Limit, Verdict
from shine_mcp.auth.sessions import cookie_name, resolve_session
from shine_mcp.auth.widget_tokens import resolve_widget_token

AUTH_PATHS = ("/authorize", "/token", "/register", "/revoke")
MAX_INSPECTED_BODY = (
    1024 * 1024
)  # scope checks read bodies up to this; bigger ones meet the ToolGuard backstop
SESSION_STATE_KEY = "shine_session"
MISDIRECTED = b"This server does not answer to that host name.\n"
REFUSED_HOSTS_LOGGED = 50  # distinct refused names worth a log line each; past that, floods stay quiet

log = logging.getLogger("shine.auth")

if TYPE_CHECKING:
    from shine_mcp.auth.authority import Authority

_RANK = {READ: 0, SHOP: 1, ADMIN: 2}


def area_of(path: str) -> str | None:
    if path == "/mcp" or path.startswith("/mcp/"):
        return "mcp"
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/auth/") or path in AUTH_PATHS:
        return "auth"
    if path.startswith("/.well-known/"):
        return "discovery"
    if path.startswith("/checkout/"):
        return "checkout"  # the pages Stripe sends shoppers back to: each may ask Stripe about a session
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def too_many(send: Send, verdict: Verdict) -> None:
    await _send_json(
        send,
        429,
        {
            "error": "rate_limited",
            "error_description": f"too many requests; retry in {verdict.retry_after} s",
        },
        {"Retry-After": str(verdict.retry_after)},
    )


async def misdirected(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 421,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(MISDIRECTED)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": MISDIRECTED})


class FrontDoor:
    def __init__(self, app: ASGIApp, authority: Authority) -> None:
        self.app, self.authority = app, authority
        self.hosts = allowed_hosts(authority.settings)
        self._refused_hosts: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host")
            if not host_allowed(host, self.hosts):
                self._log_refused(host)
                if scope["type"] == "http":
                    await misdirected(send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        area = area_of(scope["path"]) if scope["type"] == "http" else None
        if area is None:
            await self.app(scope, receive, send)
            return
        if area == "mcp" and self.authority.protects_mcp:
            await self._protected_mcp(scope, receive, send)
        elif area == "api":
            await self._api(scope, receive, send)
        elif await self._within_limits(scope, send, area, None):
            await self.app(scope, receive, send)

    def _log_refused(self, host: str | None) -> None:
        """One line per distinct refused name, so a merchant behind a proxy learns what to configure."""
        shown = (host or "")[:100]
        if shown in self._refused_hosts or len(self._refused_hosts) >= REFUSED_HOSTS_LOGGED:
            return
        self._refused_hosts.add(shown)
        log.warning(
            "refused a request for host %r (421): if that is this shop's address, set SHINE_PUBLIC_URL or "
            "add it to SHINE_ALLOWED_HOSTS",
            shown,
        )

    async def _within_limits(self, scope: Scope, send: Send, area: str, user_id: str | None) -> bool:
        """Count the request against its IP (and its user, once known) in one database round trip;
        answer 429 and return False when over. Identifying the caller first costs one indexed read, so
        a flood of bad tokens or cookies is still counted against its IP before anything else happens."""
        settings = self.authority.settings
        ip = (scope.get("client") or ("unknown", 0))[0]
        if area in ("auth", "checkout"):  # the strict per-IP limit, each area in its own bucket
            limits = [Limit(f"ip:{ip}:{area}", settings.rate_limit_auth)]
        else:
            limits = [Limit(f"ip:{ip}:all", settings.rate_limit_ip)]
        if user_id is not None:
            limits.append(Limit(f"user:{user_id}", settings.rate_limit_user))
        verdict = await self.authority.limiter.hit(limits)
        if not verdict.allowed:
            await too_many(send, verdict)
        return verdict.allowed

    # --- /mcp ----------------------------------------------------------------------------------
    def _challenge(self, error: str | None, description: str | None, scope_needed: str) -> dict[str, str]:
        parts = []
        if error:
            parts += [f'error="{error}"', f'error_description="{description}"']
        parts += [f'resource_metadata="{self.authority.resource_metadata_url}"', f'scope="{scope_needed}"']
        return {"WWW-Authenticate": "Bearer " + ", ".join(parts)}

    async def _refuse(
        self, send: Send, status: int, error: str | None, description: str, scope_needed: str
    ) -> None:
        await _send_json(
            send,
            status,
            {"error": error or "invalid_token", "error_description": description},
            self._challenge(error, description, scope_needed),
        )

    async def _protected_mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        authorization = headers.get("authorization", "")
        default_scope = " ".join(DEFAULT_SCOPES)
        if not authorization.lower().startswith("bearer "):
            if await self._within_limits(scope, send, "mcp", None):
                await self._refuse(
                    send, 401, None, "sign in: this MCP server needs an OAuth access token", default_scope
                )
            return
        raw = authorization[7:].strip()
        provider = self.authority.provider
        token = await provider.load_access_token(raw) if len(raw) <= 200 else None
        if token is None or token.resource is None or not self.authority.is_our_resource(token.resource):
            if await self._within_limits(scope, send, "mcp", None):
                await self._refuse(
                    send,
                    401,
                    "invalid_token",
                    "the access token is expired, revoked or not for this server",
                    default_scope,
                )
            return
        if not await self._within_limits(scope, send, "mcp", token.subject):
            return
        granted = set(token.scopes)
        if READ not in granted:
            await self._refuse(
                send, 403, "insufficient_scope", f"needs {READ}", " ".join(sorted(granted | {READ}))
            )
            return
        roles = set((token.claims or {}).get("roles") or ())
        could_have = {READ, SHOP} | ({ADMIN} if "admin" in roles else set())
        if scope["method"] == "POST" and not could_have <= granted:
            receive, needed = await self._needed_scope(scope, receive)
            if needed is not None and needed not in granted and needed in could_have:
                wanted = " ".join(s for s in (READ, SHOP, ADMIN) if s in granted | {needed})
                await self._refuse(send, 403, "insufficient_scope", f"this tool needs {needed}", wanted)
                return
        marker = provider.remember(raw, token)
        try:
            await self.app(scope, receive, send)
        finally:
            provider.forget(marker)

    async def _needed_scope(self, scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
        """The scope the JSON-RPC request in the body needs, and a `receive` that replays the body."""
        length = Headers(scope=scope).get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_INSPECTED_BODY:
            return receive, None
        chunks: list[bytes] = []
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        replay = _replaying(messages, receive)
        try:
            body = json.loads(b"".join(chunks) or b"null")
        except ValueError:
            return replay, None
        calls = body if isinstance(body, list) else [body]
        needed: str | None = None
        for call in calls:
            if isinstance(call, dict) and call.get("method") == "tools/call":
                name = (call.get("params") or {}).get("name")
                info = await self.authority.catalog.get(str(name)) if name else None
                if info is not None and (needed is None or _RANK[info.scope] > _RANK[needed]):
                    needed = info.scope
        return replay, needed

    # --- /api ------------------------------------------------------------------------------------
    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.authority.settings
        connection = HTTPConnection(scope)
        authorization = connection.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":  # the widget on a shop's own site (widget_tokens.py)
            await self._widget_api(scope, receive, send, authorization[7:].strip())
            return
        token = connection.cookies.get(cookie_name(settings))
        active = await resolve_session(
            self.authority.services.db, settings, token, now=self.authority.clock()
        )
        if not await self._within_limits(scope, send, "api", active.user_id if active else None):
            return
        if active is not None:
            scope.setdefault("state", {})[SESSION_STATE_KEY] = active
            if active.slid and token:
                send = _with_cookie(send, self.authority.session_cookie(token))
        await self.app(scope, receive, send)

    async def _widget_api(self, scope: Scope, receive: Receive, send: Send, raw: str) -> None:
        """A widget token counts only from the origin it was handed to: from any other page, or with no
        `Origin` at all, it is refused like an expired one (401), before any route sees the request."""
        origin = Headers(scope=scope).get("origin")
        active = await resolve_widget_token(
            self.authority.services.db, raw, origin, now=self.authority.clock()
        )
        if not await self._within_limits(scope, send, "api", active.user_id if active else None):
            return
        if active is None:
            cors: dict[str, str] = {}
            if origin is not None and origin in self.authority.settings.allowed_origins:
                cors = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
            await _send_json(
                send,
                401,
                {"error": "invalid_token", "error_description": "sign in again: this sign-in has ended"},
                {**cors, "Vary": "Origin"},
            )
            return
        scope.setdefault("state", {})[SESSION_STATE_KEY] = active
        await self.app(scope, receive, send)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _with_cookie(send: Send, set_cookie: str) -> Callable[[Message], Awaitable[None]]:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [*message.get("headers", []), (b"set-cookie", set_cookie.encode())],
            }
        await send(message)

    return sending
