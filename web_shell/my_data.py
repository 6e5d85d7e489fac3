"""A widget shopper's data rights, from the widget itself: `GET /api/my-data` (everything Shine holds about
this browser's person, as a JSON download), `POST /api/my-data/delete` and `POST /api/account/close`
(both need `{"confirm": true}`).

The advisor never gets these tools (agent/policy.json), so no prompt or web page can trigger them; the
shopper does, with a button and a second click. Who is asking comes from `known_identity`: the sign-in
cookie, or the guest behind this browser's chat token; a browser Shine knows nothing about is told so.
The work is the MCP tools' (`export_my_data`, `delete_my_data`, `close_my_account`), called in-process as
that person, so the widget and an MCP client get the same erasure.
"""

from __future__ import annotations

import json
from typing import Any, cast

from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import RequestParamsMeta
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.auth.sessions import cookie_name, cookie_secure
from shine_mcp.services import Services
from web_shell.auth import WebIdentity
from web_shell.chat import (
    api_error,
    chat_cookie_name,
    cors_headers,
    known_identity,
    preflight,
    refuse_origin,
)
from web_shell.limits import CLOSE, BodyRefused, read_json

NO_STORE = {"Cache-Control": "no-store"}
MAX_CONFIRM_BODY = 16 * 1024  # {"confirm": true} and nothing more is needed


class MyDataRoutes:
    def __init__(self, services: Services, server: MCPServer) -> None:
        self.services, self.server = services, server

    async def _call(self, identity: WebIdentity, tool: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        async with Client(self.server) as client:
            meta = cast(RequestParamsMeta, identity.meta(self.services.settings))
            result = await client.call_tool(tool, arguments, meta=meta)
        if result.is_error:
            return False, " ".join(getattr(c, "text", "") for c in result.content)
        return True, result.structured_content

    async def _who(self, request: Request) -> tuple[dict[str, str] | None, WebIdentity | None]:
        cors = cors_headers(request, self.services)
        if cors is None:
            return None, None
        return cors, await known_identity(request, self.services)

    async def export(self, request: Request) -> Response:
        cors, identity = await self._who(request)
        if cors is None:
            return refuse_origin()
        if identity is None:
            return api_error(404, "unknown_visitor", "Shine holds nothing about this browser yet", cors)
        ok, data = await self._call(identity, "export_my_data", {})
        if not ok:
            return api_error(400, "export_failed", str(data), cors)
        return Response(
            json.dumps(data, indent=2, ensure_ascii=False, default=str),
            media_type="application/json",
            headers={
                **cors,
                **NO_STORE,
                "Content-Disposition": 'attachment; filename="shine-my-data.json"',
            },
        )

    async def _confirmed(self, request: Request, cors: dict[str, str]) -> Response | None:
        """None when the body is `{"confirm": true}`; else the refusal. JSON only, so a plain HTML form on
        another site cannot post it (and the origin check has refused other sites already)."""
        if not request.headers.get("content-type", "").startswith("application/json"):
            return api_error(415, "bad_request", 'send JSON: {"confirm": true}', cors)
        try:
            body = await read_json(request, MAX_CONFIRM_BODY, self.services.settings)
        except BodyRefused as refused:
            return api_error(refused.status_code, refused.code, refused.message, {**cors, **CLOSE})
        except ValueError:
            return api_error(400, "bad_request", 'send JSON: {"confirm": true}', cors)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            return api_error(
                400,
                "not_confirmed",
                'this cannot be undone: ask the person, then send {"confirm": true}',
                cors,
            )
        return None

    async def delete(self, request: Request) -> Response:
        return await self._erase(request, "delete_my_data")

    async def close(self, request: Request) -> Response:
        response = await self._erase(request, "close_my_account")
        if response.status_code == 200:  # the sign-in session ended with the account
            settings = self.services.settings
            response.delete_cookie(
                cookie_name(settings), path="/", secure=cookie_secure(settings), httponly=True
            )
        return response

    async def _erase(self, request: Request, tool: str) -> Response:
        cors, identity = await self._who(request)
        if cors is None:
            return refuse_origin()
        refusal = await self._confirmed(request, cors)
        if refusal is not None:
            return refusal
        if identity is None:
            return api_error(404, "unknown_visitor", "Shine holds nothing about this browser", cors)
        ok, data = await self._call(identity, tool, {"confirm": True})
        if not ok:
            return api_error(400, "erase_failed", str(data), cors)
        response = JSONResponse(data, headers={**cors, **NO_STORE})
        self._forget_chat(response)  # the chat it named is gone
        return response

    def _forget_chat(self, response: Response) -> None:
        response.delete_cookie(chat_cookie_name(self.services), path="/", httponly=True)


def routes(services: Services, server: MCPServer) -> list[BaseRoute]:
    handlers = MyDataRoutes(services, server)

    async def options(request: Request) -> Response:
        return preflight(request, services)

    return [
        Route("/api/my-data", handlers.export, methods=["GET"]),
        Route("/api/my-data/delete", handlers.delete, methods=["POST"]),
        Route("/api/account/close", handlers.close, methods=["POST"]),
        *(
            Route(path, options, methods=["OPTIONS"])
            for path in ("/api/my-data", "/api/my-data/delete", "/api/account/close")
        ),
    ]
