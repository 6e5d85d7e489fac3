"""Sign-in routes: Google (`/auth/google/login`, `/auth/google/callback`), the loopback-only dev sign-in
(`/auth/dev`), `/auth/me`, `/auth/logout`, the consent page MCP clients are sent to (`/auth/consent`),
and the OAuth discovery documents for `/mcp`. Plus `web_identity`, how other routes learn who is there.

The SDK mounts `/authorize`, `/token`, `/register` and `/revoke` itself (see `shine_mcp/auth/provider.py`);
the discovery documents here are listed before it, so Shine's own versions win.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from mcp.server.auth.json_response import PydanticJSONResponse
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.auth import audit
from shine_mcp.auth.accounts import AccountConflict, get_user, merge_guest, stored_roles, upsert_user
from shine_mcp.auth.authority import Authority
from shine_mcp.auth.gate import SESSION_STATE_KEY
from shine_mcp.auth.identity import GUEST_PREFIX, identity_meta
from shine_mcp.auth.keys import new_id
from shine_mcp.auth.policy import ADMIN, SCOPE_TEXT, grantable_scopes, is_local_request, roles_for
from shine_mcp.auth.sessions import (
    ActiveSession,
    cookie_name,
    cookie_secure,
    create_session,
    resolve_session,
    revoke_session,
    revoke_user_sessions,
)
from shine_mcp.auth.widget_tokens import revoke_user_widget_tokens
from shine_mcp.clock import utcnow
from shine_mcp.integrations.google import PendingLogin, SignInError, VerifiedPerson
from shine_mcp.services import Services
from shine_mcp.store.photos import PhotoStore
from web_shell.limits import read_form
from web_shell.templating import notice, render

LOGIN_COOKIE = "shine_login"
LOGIN_SECONDS = 600
CSRF_COOKIE = "shine_csrf"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_NETLOC = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")


@dataclass(frozen=True)
class WebIdentity:
    """The person behind a browser request: a signed-in user or a guest."""

    user_id: str
    roles: frozenset[str]
    guest: bool
    email: str | None = None
    name: str | None = None

    def meta(self, secret: Any) -> dict[str, Any]:
        """`_meta` for the web shell's in-process MCP calls on this person's behalf (see `identity_meta`)."""
        return identity_meta(self.user_id, secret, roles=self.roles)


async def _identity(services: Services, active: ActiveSession) -> WebIdentity | None:
    if active.guest:
        return WebIdentity(active.user_id, frozenset({"user"}), guest=True)
    user = await get_user(services.db, active.user_id)
    if user is None:
        return None
    roles = roles_for(stored_roles(user), user.email, services.settings)
    return WebIdentity(user.id, roles, guest=False, email=user.email, name=user.name)


async def web_identity(request: Request, services: Services) -> WebIdentity | None:
    """Who sent this request, from the session cookie; None without a live session. For `/api/*` the front
    door has already resolved the cookie (and slid its expiry)."""
    active = request.scope.get("state", {}).get(SESSION_STATE_KEY)
    if active is None:
        token = request.cookies.get(cookie_name(services.settings))
        active = await resolve_session(services.db, services.settings, token, now=utcnow())
    return await _identity(services, active) if active is not None else None


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in; anything else (another site, `//host`) becomes `/`."""
    if not value or len(value) > 2000 or any(ord(c) < 32 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _form_target(redirect_uri: str) -> str:
    """The CSP source of the place the consent form's answer redirects to (`https://client.example`, or
    `cursor:` for an app's own scheme), so `form-action` lets that redirect through; "" if it cannot be
    written as one."""
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme):
        return ""
    if scheme in ("http", "https"):
        return f"{scheme}://{parts.netloc}" if _NETLOC.match(parts.netloc) else ""
    return f"{scheme}:"


class AuthRoutes:
    def __init__(self, services: Services, authority: Authority) -> None:
        self.services, self.authority, self.settings = services, authority, authority.settings
        self.base = self.settings.base_url

    # --- helpers -------------------------------------------------------------------------------
    def _ip(self, request: Request) -> str | None:
        return request.client.host if request.client else None

    def _csrf_token(self, request: Request, response_cookies: list[str]) -> str:
        """The token for a form's hidden `csrf` field (and the cookie it is checked against, if new)."""
        seed = request.cookies.get(CSRF_COOKIE)
        if not seed:
            seed = secrets.token_urlsafe(16)
            secure = "; Secure" if cookie_secure(self.settings) else ""
            response_cookies.append(f"{CSRF_COOKIE}={seed}; Path=/auth; HttpOnly; SameSite=Lax{secure}")
        return self.authority.keys.csrf_token(seed)

    def _csrf_ok(self, request: Request, form: Any) -> bool:
        origin = request.headers.get("origin")
        # "null" means a privacy setting hid the origin: then the form's token alone decides.
        if origin and origin not in (self._origin(), "null"):
            return False
        seed = request.cookies.get(CSRF_COOKIE)
        return bool(seed) and self.authority.keys.csrf_ok(seed or "", str(form.get("csrf") or ""))

    def _origin(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    def _with_cookies(self, response: Response, cookies: list[str]) -> Response:
        for cookie in cookies:
            response.headers.append("set-cookie", cookie)
        return response

    async def _session(self, request: Request) -> ActiveSession | None:
        token = request.cookies.get(cookie_name(self.settings))
        return await resolve_session(self.services.db, self.settings, token, now=self.authority.clock())

    # --- sign-in ---------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        next_path = quote(safe_next(request.query_params.get("next")), safe="")
        if self.authority.google is not None:
            return RedirectResponse(f"/auth/google/login?next={next_path}", 302)
        if self.authority.dev_sign_in:
            return RedirectResponse(f"/auth/dev?next={next_path}", 302)
        return notice(
            request,
            "Sign-in is not configured",
            "This shop has not set up sign-in (GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET).",
            status=503,
        )

    async def google_login(self, request: Request) -> Response:
        google = self.authority.google
        if google is None:
            return await self.login(request)
        try:
            url, pending = await google.start(f"{self.base}/auth/google/callback")
        except SignInError:  # the sign-in service's discovery or set-up failed; it logged the details
            return notice(
                request,
                "Sign-in is unavailable right now",
                "Signing in does not work at the moment. You can keep using the shop as a guest and try "
                "again later.",
                status=503,
                back_to_shop="/",
            )
        carried = {
            "state": pending.state,
            "nonce": pending.nonce,
            "verifier": pending.code_verifier,
            "next": safe_next(request.query_params.get("next")),
        }
        response = RedirectResponse(url, 302, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            LOGIN_COOKIE,
            self.authority.keys.encrypt(json.dumps(carried), self.authority.clock()),
            max_age=LOGIN_SECONDS,
            path="/auth/google/callback",
            httponly=True,
            samesite="lax",
            secure=cookie_secure(self.settings),
        )
        return response

    async def google_callback(self, request: Request) -> Response:
        google = self.authority.google
        if google is None:
            return notice(
                request, "Sign-in is not configured", "Google sign-in is not set up here.", status=404
            )
        raw = request.cookies.get(LOGIN_COOKIE)
        opened = self.authority.keys.decrypt(raw, self.authority.clock(), ttl=LOGIN_SECONDS) if raw else None
        try:
            if opened is None:
                raise SignInError(
                    "expired_login", "this sign-in expired or began in another browser; start again"
                )
            carried = json.loads(opened)
            params = request.query_params
            if params.get("error"):
                raise SignInError("cancelled", "the sign-in was cancelled")
            if not secrets.compare_digest(str(params.get("state", "")), carried["state"]):
                raise SignInError(
                    "state_mismatch", "this sign-in answer does not belong to this browser; start again"
                )
            code = params.get("code")
            if not code:
                raise SignInError("code_rejected", "the sign-in service sent no code; start again")
            pending = PendingLogin(carried["state"], carried["nonce"], carried["verifier"])
            person = await google.finish(
                code=code, redirect_uri=f"{self.base}/auth/google/callback", pending=pending
            )
        except SignInError as exc:
            return await self._failed(request, exc.reason, str(exc))
        return await self._signed_in(request, person, "google", carried["next"])

    async def _failed(self, request: Request, reason: str, message: str) -> Response:
        await audit.record(
            self.services.db, "sign_in_failed", ip=self._ip(request), at=self.authority.clock(), reason=reason
        )
        response = notice(
            request, "Sign-in did not work", message, status=400, link=("/auth/login", "Try again")
        )
        response.delete_cookie(LOGIN_COOKIE, path="/auth/google/callback")
        return response

    async def _signed_in(
        self, request: Request, person: VerifiedPerson, method: str, next_path: str
    ) -> Response:
        db, now, ip = self.services.db, self.authority.clock(), self._ip(request)
        try:
            user = await upsert_user(db, person, now=now)
        except AccountConflict as exc:
            return await self._failed(request, "account_conflict", str(exc))
        previous = await self._session(request)
        if previous is not None:
            await revoke_session(db, previous.id, now=now)  # a new session id at sign-in: no fixation
            if previous.guest:
                photos = PhotoStore(self.settings.data_dir)
                moved = await merge_guest(db, previous.user_id, user.id, photos=photos)
                await audit.record(db, "guest_merged", actor_id=user.id, ip=ip, at=now, rows=moved)
        token, _ = await create_session(db, self.settings, user.id, now=now)
        await audit.record(db, "sign_in", actor_id=user.id, ip=ip, at=now, method=method)
        response = RedirectResponse(safe_next(next_path), 303, headers={"Cache-Control": "no-store"})
        response.headers.append("set-cookie", self.authority.session_cookie(token))
        response.delete_cookie(LOGIN_COOKIE, path="/auth/google/callback")
        return response

    # --- the loopback dev sign-in -----------------------------------------------------------------
    def _dev_allowed(self, request: Request) -> bool:
        return self.authority.dev_sign_in and is_local_request(self._ip(request), request.headers)

    async def dev(self, request: Request) -> Response:
        if not self._dev_allowed(request):
            return notice(
                request, "Not found", "The dev sign-in exists only on a loopback setup.", status=404
            )
        next_path = safe_next(request.query_params.get("next"))
        if request.method == "POST":
            form = await read_form(request, self.settings)
            if not self._csrf_ok(request, form):
                return notice(request, "Expired form", "Reload the page and try again.", status=403)
            email = str(form.get("email") or "").strip().lower()
            if not EMAIL.match(email):
                return notice(
                    request, "Dev sign-in", "Type an email address like ana@example.com.", status=400
                )
            name = str(form.get("name") or "").strip()[:200] or None
            person = VerifiedPerson(email=email, email_verified=False, name=name)
            return await self._signed_in(request, person, "dev", str(form.get("next") or next_path))
        cookies: list[str] = []
        csrf = self._csrf_token(request, cookies)
        page = render(request, "dev_sign_in.html", title="Dev sign-in", csrf=csrf, next_path=next_path)
        return self._with_cookies(page, cookies)

    # --- who am I, sign out ---------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        active = await self._session(request)
        identity = await _identity(self.services, active) if active else None
        body: dict[str, Any] = {
            "signed_in": bool(identity and not identity.guest),
            "guest": bool(identity and identity.guest),
            "user": None,
            "sign_in": {"google": self.authority.google is not None, "dev": self.authority.dev_sign_in},
            "login_url": "/auth/login",
        }
        if identity is not None and active is not None:
            body["user"] = {
                "id": identity.user_id,
                "email": identity.email,
                "name": identity.name,
                "roles": sorted(identity.roles),
            }
            body["session_expires_at"] = active.expires_at.isoformat()
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def logout(self, request: Request) -> Response:
        if request.method == "GET":
            cookies: list[str] = []
            csrf = self._csrf_token(request, cookies)
            return self._with_cookies(render(request, "sign_out.html", title="Sign out", csrf=csrf), cookies)
        form_data = await read_form(request, self.settings)
        if not self._csrf_ok(request, form_data):
            return notice(request, "Expired form", "Reload the page and try again.", status=403)
        active = await self._session(request)
        now = self.authority.clock()
        if active is not None:
            if form_data.get("everywhere") and not active.guest:
                await revoke_user_sessions(self.services.db, active.user_id, now=now)
                await revoke_user_widget_tokens(self.services.db, active.user_id, now=now)
            else:
                await revoke_session(self.services.db, active.id, now=now)
            await audit.record(
                self.services.db,
                "sign_out",
                actor_id=active.user_id,
                ip=self._ip(request),
                at=now,
                everywhere=bool(form_data.get("everywhere")),
            )
        response = RedirectResponse(safe_next(str(form_data.get("next") or "/")), 303)
        response.delete_cookie(
            cookie_name(self.settings), path="/", secure=cookie_secure(self.settings), httponly=True
        )
        return response

    # --- consent for MCP clients ------------------------------------------------------------------
    async def consent(self, request: Request) -> Response:
        provider = self.authority.provider
        request_id = str(request.query_params.get("request") or "")
        if request.method == "POST":
            form = await read_form(request, self.settings)
            request_id = str(form.get("request") or "")
        pending = await provider.pending(request_id) if request_id else None
        if pending is None:
            return notice(
                request,
                "This request has expired",
                "This authorization request expired or was already answered. Start again from your MCP client.",
                status=400,
            )
        active = await self._session(request)
        identity = await _identity(self.services, active) if active else None
        if identity is None or identity.guest:
            return RedirectResponse(
                f"/auth/login?next={quote(f'/auth/consent?request={request_id}', safe='')}", 302
            )
        if request.method == "POST":
            if not self._csrf_ok(request, form):
                return notice(request, "Expired form", "Reload the page and try again.", status=403)
            if form.get("decision") == "approve":
                target = await provider.approve(
                    request_id, identity.user_id, identity.roles, self._ip(request)
                )
            else:
                target = await provider.deny(request_id, identity.user_id, self._ip(request))
            if target is None:
                return notice(
                    request, "This request has expired", "Start again from your MCP client.", status=400
                )
            return RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
        return self._consent_page(request, pending, identity)

    def _consent_page(self, request: Request, pending: Any, identity: WebIdentity) -> Response:
        client = pending.client
        granted = grantable_scopes(pending.scopes, identity.roles)
        cookies: list[str] = []
        page = render(
            request,
            "consent.html",
            title="Allow access to Shine?",
            # The answer redirects to the client: the form may go there, and nowhere else but Shine.
            csp={"form-action": f"'self' {_form_target(pending.redirect_uri)}".strip()},
            client_name=client.client_name or "An MCP client",
            client_host=urlsplit(client.client_id).netloc
            if client.client_id.startswith("https://")
            else None,
            account=identity.email or identity.user_id,
            granted=[SCOPE_TEXT[s] for s in granted],
            admin_refused=ADMIN in pending.scopes and ADMIN not in granted,
            redirect_host=urlsplit(pending.redirect_uri).netloc or pending.redirect_uri,
            csrf=self._csrf_token(request, cookies),
            request_id=pending.id,
        )
        return self._with_cookies(page, cookies)

    # --- revocation ---------------------------------------------------------------------------------
    async def revoke(self, request: Request) -> Response:
        """RFC 7009, in front of the SDK's handler, which wrongly insists on a `client_secret` field even
        from public clients. Unknown or foreign tokens get the same 200, as the RFC asks."""
        try:
            client = await ClientAuthenticator(self.authority.provider).authenticate_request(request)
        except AuthenticationError as exc:
            return JSONResponse(
                {"error": "invalid_client", "error_description": exc.message}, status_code=401
            )
        form = await read_form(request, self.settings)
        token = form.get("token")
        if not isinstance(token, str) or not token:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "token is required"}, status_code=400
            )
        provider = self.authority.provider
        found = await provider.load_access_token(token)
        if found is None:
            found = await provider.load_refresh_token(client, token)  # type: ignore[assignment]
        if found is not None and found.client_id == client.client_id:
            await provider.revoke_token(found)
        return Response(
            status_code=200,
            headers={"Cache-Control": "no-store", "Pragma": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    # --- discovery documents ----------------------------------------------------------------------
    async def protected_resource(self, _request: Request) -> Response:
        return PydanticJSONResponse(
            content=self.authority.protected_resource_metadata(),
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )

    async def authorization_server(self, _request: Request) -> Response:
        return PydanticJSONResponse(
            content=self.authority.authorization_server_metadata(),
            headers={"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"},
        )


async def start_guest_session(services: Services, authority: Authority, response: Response) -> WebIdentity:
    """Give a browser without a session a guest one (for the chat widget); its data merges at sign-in."""
    guest_id = new_id(GUEST_PREFIX.rstrip("_"))
    token, _ = await create_session(
        services.db, services.settings, guest_id, now=authority.clock(), guest=True
    )
    response.headers.append("set-cookie", authority.session_cookie(token))
    return WebIdentity(guest_id, frozenset({"user"}), guest=True)


def routes(services: Services, authority: Authority) -> list[BaseRoute]:
    handlers = AuthRoutes(services, authority)
    listed: list[BaseRoute] = [
        Route("/auth/login", handlers.login, methods=["GET"]),
        Route("/auth/google/login", handlers.google_login, methods=["GET"]),
        Route("/auth/google/callback", handlers.google_callback, methods=["GET"]),
        Route("/auth/me", handlers.me, methods=["GET"]),
        Route("/auth/logout", handlers.logout, methods=["GET", "POST"]),
    ]
    if authority.dev_sign_in:
        listed.append(Route("/auth/dev", handlers.dev, methods=["GET", "POST"]))
    if authority.protects_mcp:
        listed += [
            Route("/auth/consent", handlers.consent, methods=["GET", "POST"]),
            Route("/revoke", handlers.revoke, methods=["POST"]),
            Route("/.well-known/oauth-protected-resource", handlers.protected_resource, methods=["GET"]),
            Route("/.well-known/oauth-protected-resource/mcp", handlers.protected_resource, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", handlers.authorization_server, methods=["GET"]),
        ]
    return listed
