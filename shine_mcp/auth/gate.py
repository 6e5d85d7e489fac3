"""The front door: one ASGI middleware in front of the web shell that rate-limits, authenticates `/mcp`
with Shine's OAuth access tokens and reads the web session cookie for `/api/*`.

Order matters: the per-IP limit runs before any token or cookie lookup (so floods cost one counter
update), then the caller is identified, then the per-user limit and the scope check run.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shine_mcp.auth.policy import ADMIN, DEFAULT_SCOPES, READ, SHOP
from shine_mcp.auth.ratelimit import Limit, Verdict
from shine_mcp.auth.sessions import cookie_name, resolve_session

AUTH_PATHS = ("/authorize", "/token", "/register", "/revoke")
MAX_INSPECTED_BODY = (
    1024 * 1024
)  # scope checks read bodies up to this; bigger ones meet the ToolGuard backstop
SESSION_STATE_KEY = "shine_session"

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


class FrontDoor:
    def __init__(self, app: ASGIApp, authority: Authority) -> None:
        self.app, self.authority = app, authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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

    async def _within_limits(self, scope: Scope, send: Send, area: str, user_id: str | None) -> bool:
        """Count the request against its IP (and its user, once known) in one database round trip;
        answer 429 and return False when over. Identifying the caller first costs one indexed read, so
        a flood of bad tokens or cookies is still counted against its IP before anything else happens."""
        settings = self.authority.settings
        ip = (scope.get("client") or ("unknown", 0))[0]
        limits = [
            Limit(f"ip:{ip}:auth", settings.rate_limit_auth)
            if area == "auth"
            else Limit(f"ip:{ip}:all", settings.rate_limit_ip)
        ]
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
