"""The last line for a busy database: an ASGI guard that answers 503 with `Retry-After` instead of a 500.

Writes wait their turn and retry (`store.db`), so this is reached only when the database stayed locked past
its patience, the connection pool had none free, or PostgreSQL cancelled a statement that ran or waited past
`SHINE_DB_STATEMENT_TIMEOUT_SECONDS`: the request did not happen, and saying "busy, retry in 2 s" lets a
client do exactly that. A response that already started (a chat stream) cannot change its
status; the chat reports a reply it could not save inside the stream instead (`chat_runs`).
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shine_mcp.store.db import RETRY_AFTER_SECONDS, busy_reason, database_busy

log = logging.getLogger("shine.web")


def busy_error(error: BaseException) -> bool:
    """A locked database, an exhausted connection pool or a PostgreSQL statement cancelled at its timeout,
    also inside an exception group (task groups): `store.db.database_busy`."""
    return database_busy(error)


class BusyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            if started or not busy_error(error):
                raise
            log.warning("%s %s: %s; answered 503", scope.get("method"), scope.get("path"), busy_reason(error))
            body = json.dumps(
                {"error": "busy", "message": f"Shine is busy; please try again in {RETRY_AFTER_SECONDS} s."}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
