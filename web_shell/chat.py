"""The web chat API: `POST /api/chat` (a message → a Server-Sent Events stream of the advisor's reply),
`GET /api/chat` (the conversation so far), `GET /api/chat/runs/{id}/events` (resume a stream),
`POST /api/chat/reset`, and photo uploads (`POST /api/uploads`, `DELETE /api/uploads/{id}`).

Who is chatting comes from one function, `chat_identity`: the sign-in session cookie when there is one,
else the guest that owns this browser's chat (signed chat token in the `shine_chat` cookie or the
`X-Shine-Chat` header, for shops on another origin that block third-party cookies), else a new guest.
The advisor calls tools through an in-process MCP client, as that person (`identity_meta`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from urllib.parse import urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from agent import Attachment, Conversation
from shine_mcp.auth.authority import Authority
from shine_mcp.auth.keys import derive, master_key
from shine_mcp.clock import utcnow
from shine_mcp.models import ImageRejected, keepable_photo
from shine_mcp.services import Services
from shine_mcp.store import chat as store
from web_shell import shop_page
from web_shell.auth import WebIdentity, start_guest_session, web_identity
from web_shell.chat_runs import ChatService, conversation_of
from web_shell.limits import CLOSE, BodyRefused, bounded, read_json

log = logging.getLogger("shine.chat")

MAX_MESSAGE_CHARS = 4000
MAX_MESSAGE_BODY = 64 * 1024  # a 4000-character message as JSON, with room for its options
MAX_ATTACHMENTS = 3
CHAT_HEADER = "x-shine-chat"
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
ALLOWED_HEADERS = "content-type, x-shine-chat, last-event-id, authorization"  # the widget token


# --- the chat token: which conversation this browser is in ------------------------------------------
def _token_key(services: Services) -> bytes:
    return derive(master_key(services.settings), "chat-token")


def chat_token(services: Services, chat_id: str) -> str:
    signature = hmac.new(_token_key(services), chat_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{chat_id}.{signature}"


def read_chat_token(services: Services, token: str | None) -> str | None:
    """The chat id a token names, or None when it is missing, altered or not ours."""
    if not token or token.count(".") != 1 or len(token) > 120:
        return None
    chat_id, _ = token.split(".")
    return chat_id if hmac.compare_digest(chat_token(services, chat_id), token) else None


def chat_cookie_name(services: Services) -> str:
    return "__Host-shine_chat" if services.settings.base_url.startswith("https://") else "shine_chat"


def chat_cookie(services: Services, token: str) -> str:
    secure = services.settings.base_url.startswith("https://")
    # Cross-site shops (SHINE_ALLOWED_ORIGINS) need SameSite=None, which browsers accept only with Secure.
    same_site = "None" if secure and services.settings.allowed_origins else "Lax"
    days = services.settings.session_days
    return (
        f"{chat_cookie_name(services)}={token}; Path=/; Max-Age={days * 86400}; HttpOnly; SameSite={same_site}"
        + ("; Secure" if secure else "")
    )


# --- who is chatting ---------------------------------------------------------------------------------
async def chat_identity(
    request: Request, services: Services, authority: Authority, response: Response
) -> WebIdentity:
    """The one seam where the web chat learns who it acts for: a signed-in person, or a guest.

    A guest is known by the sign-in session cookie when the browser sends it, otherwise by the guest that
    owns the signed chat token (cookie or header), otherwise a new guest session is started (its cookie
    set on `response`). A chat token never stands in for a signed-in person: those need their cookie."""
    known = await known_identity(request, services)
    return known if known is not None else await start_guest_session(services, authority, response)


async def known_identity(request: Request, services: Services) -> WebIdentity | None:
    """Who this is, without starting a guest session (reads and erasures never create one)."""
    person = await web_identity(request, services)
    if person is not None:
        return person
    chat_id = read_chat_token(
        services, request.headers.get(CHAT_HEADER) or request.cookies.get(chat_cookie_name(services))
    )
    if chat_id is not None:
        owner = await store.chat_owner(services.db, chat_id)
        if owner is not None and owner.startswith("gst_"):
            return WebIdentity(owner, frozenset({"user"}), guest=True)
    return None


# --- CORS: the shop pages allowed to embed the widget ------------------------------------------------
def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def own_origins(request: Request, services: Services) -> set[str]:
    host = request.headers.get("host", "")
    return {_origin_of(services.settings.base_url), f"{request.url.scheme}://{host}"}


def cors_headers(request: Request, services: Services) -> dict[str, str] | None:
    """Headers for a cross-origin request from an allowed shop; {} for our own pages; None to refuse."""
    origin = request.headers.get("origin")
    if origin is None or origin in own_origins(request, services):
        return {}
    if origin in services.settings.allowed_origins:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": "X-Shine-Chat, X-Shine-Run",
            "Vary": "Origin",
        }
    return None


def preflight(request: Request, services: Services) -> Response:
    """The answer to a CORS preflight for any `/api/*` route."""
    headers = cors_headers(request, services)
    if headers is None:
        return refuse_origin()
    return Response(
        status_code=204,
        headers={
            **headers,
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )


def refuse_origin() -> JSONResponse:
    return JSONResponse(
        {
            "error": "origin_not_allowed",
            "message": "this page may not use Shine's chat; the shop must add its "
            "origin to SHINE_ALLOWED_ORIGINS",
        },
        status_code=403,
    )


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers or {})


def _with_cookies(response: Response, sink: Response) -> Response:
    """Copy the cookies `chat_identity` set on a placeholder response onto the real one."""
    for cookie in sink.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", cookie)
    return response


# --- routes --------------------------------------------------------------------------------------------
class ChatRoutes:
    def __init__(self, service: ChatService) -> None:
        self.service, self.services = service, service.services
        self.settings = service.settings

    async def _chat_for(
        self, request: Request, identity: WebIdentity, *, fresh: bool = False
    ) -> tuple[store.ChatSession, Conversation]:
        """This browser's conversation when it is the person's own, else a new one."""
        if not fresh:
            token = request.headers.get(CHAT_HEADER) or request.cookies.get(chat_cookie_name(self.services))
            chat_id = read_chat_token(self.services, token)
            if chat_id is not None:
                found = await self.service.open_chat(identity.user_id, chat_id)
                if found is not None:
                    return found
        # Idle chats and expired uploads are deleted by the purge job (`store.purge`), not on this path.
        return await store.create_chat(self.services.db, identity.user_id, now=utcnow()), Conversation()

    async def preflight(self, request: Request) -> Response:
        return preflight(request, self.services)

    async def post_chat(self, request: Request) -> Response:
        cors = cors_headers(request, self.services)
        if cors is None:
            return refuse_origin()
        try:
            body = await read_json(request, MAX_MESSAGE_BODY, self.settings)
        except BodyRefused as refused:
            message = "the message is too long" if refused.status_code == 413 else refused.message
            return api_error(refused.status_code, refused.code, message, {**cors, **CLOSE})
        except ValueError:
            return api_error(400, "bad_request", 'send JSON: {"message": "…"}', cors)
        if not isinstance(body, dict):
            return api_error(400, "bad_request", 'send JSON: {"message": "…"}', cors)
        text = str(body.get("message") or "").strip()
        confirm = body.get("confirm_checkout") is True
        upload_ids = body.get("uploads") or ([body["upload_id"]] if body.get("upload_id") else [])
        if not isinstance(upload_ids, list) or len(upload_ids) > MAX_ATTACHMENTS:
            return api_error(
                400, "bad_request", f"attach at most {MAX_ATTACHMENTS} photos, as a list of upload ids", cors
            )
        if confirm and not text:
            text = "Yes, check out my cart."
        if not text and upload_ids:
            text = "Please analyse my photo."
        if not text:
            return api_error(400, "empty_message", "write a message first", cors)
        if len(text) > MAX_MESSAGE_CHARS:
            return api_error(413, "too_long", f"keep messages under {MAX_MESSAGE_CHARS} characters", cors)

        cookies = Response()
        identity = await chat_identity(request, self.services, self.service.authority, cookies)
        chat, conversation = await self._chat_for(request, identity, fresh=body.get("new_chat") is True)
        attachments: list[Attachment] = []
        for upload_id in upload_ids:
            upload = await store.get_upload(self.services.db, identity.user_id, str(upload_id), now=utcnow())
            if upload is None:
                return api_error(
                    404, "upload_not_found", "that photo has expired or is not yours; upload it again", cors
                )
            attachments.append(Attachment(upload.id, keep=upload.keep))
        busy = self.service.runs.active_in(chat.id)
        if busy is not None:
            return api_error(
                409,
                "busy",
                "a reply is still being written in this chat; wait for it or resume it",
                {**cors, "X-Shine-Run": busy.id},
            )
        token = chat_token(self.services, chat.id)
        run = await self.service.start(identity, chat, conversation, text, attachments, confirm, token)
        response = StreamingResponse(
            run.stream(),
            media_type="text/event-stream",
            headers={**STREAM_HEADERS, **cors, "X-Shine-Chat": token, "X-Shine-Run": run.id},
        )
        response.headers.append("set-cookie", chat_cookie(self.services, token))
        page = shop_page.allowed_page(
            body.get("page_url"), self.settings, own_origins(request, self.services)
        )
        if page is not None:  # where "Return to the shop" leads after checkout
            response.headers.append("set-cookie", shop_page.cookie(self.settings, page))
        return _with_cookies(response, cookies)

    async def resume(self, request: Request) -> Response:
        cors = cors_headers(request, self.services)
        if cors is None:
            return refuse_origin()
        identity = await known_identity(request, self.services)
        run = self.service.runs.get(request.path_params["run_id"], identity.user_id) if identity else None
        if run is None:
            return api_error(
                404,
                "run_not_found",
                "that reply is no longer streaming here; GET /api/chat has the conversation",
                cors,
            )
        after = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        start = int(after) if after.isdigit() else 0
        return StreamingResponse(
            run.stream(start), media_type="text/event-stream", headers={**STREAM_HEADERS, **cors}
        )

    async def history(self, request: Request) -> Response:
        cors = cors_headers(request, self.services)
        if cors is None:
            return refuse_origin()
        identity = await known_identity(request, self.services)
        token = request.headers.get(CHAT_HEADER) or request.cookies.get(chat_cookie_name(self.services))
        chat_id = read_chat_token(self.services, token)
        chat = (
            await store.get_chat(self.services.db, identity.user_id, chat_id)
            if identity and chat_id
            else None
        )
        running = self.service.runs.active_in(chat.id) if chat else None
        return JSONResponse(
            {
                "chat_id": chat.id if chat else None,
                "messages": conversation_of(chat).transcript() if chat else [],
                "running_run_id": running.id if running else None,
                "advisor": self.service.advisor_name,
                "offline": self.service.model.kind == "offline",
                "signed_in": bool(identity and not identity.guest),
                "account": (
                    {"email": identity.email, "name": identity.name}
                    if identity is not None and not identity.guest
                    else None
                ),
                "can_sign_in": self.service.authority.google is not None
                or self.service.authority.dev_sign_in,
                "capabilities": await self.service.capabilities(),
            },
            headers={**cors, "Cache-Control": "no-store"},
        )

    async def reset(self, request: Request) -> Response:
        cors = cors_headers(request, self.services)
        if cors is None:
            return refuse_origin()
        cookies = Response()
        identity = await chat_identity(request, self.services, self.service.authority, cookies)
        chat = await store.create_chat(self.services.db, identity.user_id, now=utcnow())
        token = chat_token(self.services, chat.id)
        response = JSONResponse(
            {"chat_id": chat.id, "chat_token": token},
            headers={**cors, "Cache-Control": "no-store", "X-Shine-Chat": token},
        )
        response.headers.append("set-cookie", chat_cookie(self.services, token))
        return _with_cookies(response, cookies)

    async def upload(self, request: Request) -> Response:
        cors = cors_headers(request, self.services)
        if cors is None:
            return refuse_origin()
        limit = self.settings.max_photo_bytes
        try:
            # the form's own framing and fields take a few hundred bytes beyond the photo
            limited = bounded(request, limit + 64 * 1024, self.settings)
            async with limited.form(max_files=1, max_fields=4, max_part_size=64 * 1024) as form:
                photo = form.get("photo")
                keep = str(form.get("keep") or "").lower() in ("1", "true", "on", "yes")
                data = await photo.read() if photo is not None and not isinstance(photo, str) else None
        except BodyRefused as refused:
            message = (
                f"the photo is over {limit // (1024 * 1024)} MB; send a smaller JPEG"
                if refused.status_code == 413
                else refused.message
            )
            return api_error(refused.status_code, refused.code, message, {**cors, **CLOSE})
        except (ValueError, KeyError, AssertionError) as exc:
            return api_error(
                400, "bad_request", f"send the photo as multipart form field 'photo' ({exc})", cors
            )
        if not data:
            return api_error(400, "bad_request", "send the photo as multipart form field 'photo'", cors)
        try:
            # one decode, no larger than the stored copy, in turn with the analyses (bounded memory)
            kept = await anyio.to_thread.run_sync(
                keepable_photo, data, limiter=self.services.analysis_limiter
            )
        except ImageRejected as rejected:
            return api_error(400, rejected.code, rejected.message, cors)
        cookies = Response()
        identity = await chat_identity(request, self.services, self.service.authority, cookies)
        now = utcnow()
        width, height = kept.original_size
        row = await store.add_upload(
            self.services.db,
            identity.user_id,
            kept.jpeg,
            width=width,
            height=height,
            keep=keep,
            ttl=timedelta(minutes=self.settings.upload_ttl_minutes),
            now=now,
        )
        response = JSONResponse(
            {
                "upload_id": row.id,
                "width": width,
                "height": height,
                "size_bytes": row.size_bytes,
                "kept": keep,
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
                "metadata_removed": list(kept.metadata_removed),
            },
            status_code=201,
            headers={**cors, "Cache-Control": "no-store"},
        )
        return _with_cookies(response, cookies)

    async def delete_upload(self, request: Request) -> Response:
        cors = cors_headers(request, self.services)
        if cors is None:
            return refuse_origin()
        identity = await known_identity(request, self.services)
        gone = identity is not None and await store.delete_upload(
            self.services.db, identity.user_id, request.path_params["upload_id"]
        )
        if not gone:
            return api_error(404, "upload_not_found", "no such photo (it may have expired)", cors)
        return Response(status_code=204, headers=cors)


def routes(service: ChatService) -> list[BaseRoute]:
    handlers = ChatRoutes(service)
    return [
        Route("/api/chat", handlers.post_chat, methods=["POST"]),
        Route("/api/chat", handlers.history, methods=["GET"]),
        Route("/api/chat", handlers.preflight, methods=["OPTIONS"]),
        Route("/api/chat/reset", handlers.reset, methods=["POST"]),
        Route("/api/chat/reset", handlers.preflight, methods=["OPTIONS"]),
        Route("/api/chat/runs/{run_id}/events", handlers.resume, methods=["GET"]),
        Route("/api/chat/runs/{run_id}/events", handlers.preflight, methods=["OPTIONS"]),
        Route("/api/uploads", handlers.upload, methods=["POST"]),
        Route("/api/uploads", handlers.preflight, methods=["OPTIONS"]),
        Route("/api/uploads/{upload_id}", handlers.delete_upload, methods=["DELETE"]),
        Route("/api/uploads/{upload_id}", handlers.preflight, methods=["OPTIONS"]),
    ]


__all__ = ["ChatService", "chat_identity", "routes"]
