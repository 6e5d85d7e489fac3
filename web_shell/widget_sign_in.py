"""Sign-in for the chat widget on a shop's own site, where Shine's cookie is a third-party cookie that
browsers drop: `GET /auth/widget/start` (the popup: sign in on Shine's origin, then hand a single-use code
to the widget with `postMessage`, addressed to the embedding origin only), `POST /auth/widget/token` (code
and verifier for a widget token; the guest's cart, reports and chats join the account here) and
`POST /auth/widget/sign-out`. The tokens themselves live in `shine_mcp/auth/widget_tokens.py`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.auth import audit
from shine_mcp.auth.accounts import get_user, merge_guest
from shine_mcp.auth.authority import Authority
from shine_mcp.auth.widget_tokens import (
    CHALLENGE,
    WidgetSignInRefused,
    exchange_code,
    issue_code,
    revoke_widget_token,
)
from shine_mcp.services import Services
from shine_mcp.store.photos import PhotoStore
from web_shell.auth import web_identity
from web_shell.chat import known_identity
from web_shell.limits import CLOSE, BodyRefused, read_json
from web_shell.templating import notice, render

log = logging.getLogger("shine.auth")

STATE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_EXCHANGE_BODY = 4 * 1024
MESSAGE_TYPE = "shine:signed-in"  # widget.js listens for exactly this
# The handoff page runs one inline script, allowed by its nonce; nothing else may run or load.
_HANDOFF_JS = """(function () {
  var d = JSON.parse(document.getElementById("handoff").textContent);
  if (window.opener) {
    window.opener.postMessage({ type: d.type, code: d.code, state: d.state }, d.origin);
    window.close();
  }
  document.getElementById("alone").hidden = false;
})();"""


class WidgetSignIn:
    def __init__(self, services: Services, authority: Authority) -> None:
        self.services, self.authority, self.settings = services, authority, authority.settings

    def _allowed(self, origin: str | None) -> bool:
        return origin is not None and origin in self.settings.allowed_origins

    def _cors(self, origin: str) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
            "Cache-Control": "no-store",
        }

    def _ip(self, request: Request) -> str | None:
        return request.client.host if request.client else None

    # --- the popup ----------------------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        params = request.query_params
        origin, challenge, state = params.get("origin"), params.get("challenge", ""), params.get("state", "")
        if not self._allowed(origin) or not CHALLENGE.match(challenge) or not STATE.match(state):
            log.warning("refused a widget sign-in for the page %r (not in SHINE_ALLOWED_ORIGINS?)", origin)
            return notice(
                request,
                "This page cannot sign you in",
                "Signing in works from the shop's own pages only. Go back to the shop and press Sign in in "
                "the skin advisor again.",
                status=400,
            )
        identity = await web_identity(request, self.services)
        if identity is None or identity.guest:
            here = f"{request.url.path}?{request.url.query}"
            return RedirectResponse(f"/auth/login?next={quote(here, safe='')}", 302)
        assert origin is not None
        code = await issue_code(
            self.services.db, identity.user_id, origin, challenge, now=self.authority.clock()
        )
        nonce = secrets.token_urlsafe(16)
        data = json.dumps({"type": MESSAGE_TYPE, "code": code, "state": state, "origin": origin})
        data = data.replace("<", "\\u003c")  # nothing in it can close the script element
        return render(
            request,
            "widget_signed_in.html",
            title="Signed in",
            csp={"script-src": f"'nonce-{nonce}'"},
            who=identity.email or identity.name or "your account",
            handoff=data,
            nonce=nonce,
            script=_HANDOFF_JS,
        )

    # --- the widget's calls ---------------------------------------------------------------------------
    async def preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if not self._allowed(origin):
            return Response(status_code=403)
        assert origin is not None
        return Response(
            status_code=204,
            headers={
                **self._cors(origin),
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "content-type, authorization, x-shine-chat",
                "Access-Control-Max-Age": "600",
            },
        )

    async def token(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if not self._allowed(origin):
            log.warning("refused a widget sign-in code presented from %r", origin)
            return JSONResponse(
                {"error": "origin_not_allowed", "message": "this page may not sign in to Shine"}, 403
            )
        assert origin is not None
        cors = self._cors(origin)
        try:
            body = await read_json(request, MAX_EXCHANGE_BODY, self.settings)
        except BodyRefused as refused:
            return JSONResponse(
                {"error": refused.code, "message": refused.message},
                refused.status_code,
                headers={**cors, **CLOSE},
            )
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "bad_request", "message": "send the code and verifier"}, 400, cors)
        db, now, ip = self.services.db, self.authority.clock(), self._ip(request)
        try:
            issued = await exchange_code(
                db, str(body.get("code") or ""), str(body.get("verifier") or ""), origin, now=now
            )
        except WidgetSignInRefused as refused:
            await audit.record(db, "sign_in_failed", ip=ip, at=now, reason=refused.reason, origin=origin)
            return JSONResponse({"error": refused.reason, "message": str(refused)}, 400, headers=cors)
        user_id = issued.session.user_id
        guest = await known_identity(request, self.services)
        if guest is not None and guest.guest:  # the guest this widget chatted as: their things follow
            photos = PhotoStore(self.settings.data_dir)
            moved = await merge_guest(db, guest.user_id, user_id, photos=photos)
            await audit.record(db, "guest_merged", actor_id=user_id, ip=ip, at=now, rows=moved)
        await audit.record(db, "sign_in", actor_id=user_id, ip=ip, at=now, method="widget", origin=origin)
        user = await get_user(db, user_id)
        return JSONResponse(
            {
                "token": issued.token,
                "expires_at": issued.session.expires_at.isoformat(),
                "account": {"email": user.email, "name": user.name} if user else None,
            },
            headers=cors,
        )

    async def sign_out(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if not self._allowed(origin):
            return JSONResponse({"error": "origin_not_allowed", "message": "not from this page"}, 403)
        assert origin is not None
        authorization = request.headers.get("authorization", "")
        raw = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        now = self.authority.clock()
        if await revoke_widget_token(self.services.db, raw, origin, now=now):
            await audit.record(self.services.db, "sign_out", ip=self._ip(request), at=now, origin=origin)
        return Response(status_code=204, headers=self._cors(origin))


def routes(services: Services, authority: Authority) -> list[BaseRoute]:
    handlers = WidgetSignIn(services, authority)
    return [
        Route("/auth/widget/start", handlers.start, methods=["GET"]),
        Route("/auth/widget/token", handlers.token, methods=["POST"]),
        Route("/auth/widget/token", handlers.preflight, methods=["OPTIONS"]),
        Route("/auth/widget/sign-out", handlers.sign_out, methods=["POST"]),
        Route("/auth/widget/sign-out", handlers.preflight, methods=["OPTIONS"]),
    ]
