"""What MCP asks of a server beyond its tools: the JSON-RPC error codes of prompts and resources, the log level
a 2025-11-25 client sets with `logging/setLevel`, and the log notifications sent while a long tool runs.

The two protocol eras differ: 2025-11-25 clients set one level per connection and call a missing resource
-32002; 2026-07-28 clients opt into log messages per request (`_meta`) and call it -32602 (invalid params).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, get_args

from mcp.server.connection import allowed_log_levels
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    EmptyResult,
    LoggingLevel,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    SetLevelRequestParams,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

log = logging.getLogger("shine.protocol")

RESOURCE_NOT_FOUND = -32002  # 2025-11-25 and earlier; 2026-07-28 retired the code for -32602
LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)  # least severe first
DEFAULT_LEVEL: LoggingLevel = "info"  # until a 2025-11-25 client sets one
_LEVEL_KEY = "shine/log_level"
LOGGER = "shine"


def resource_not_found(message: str, uri: object, protocol_version: str | None) -> MCPError:
    code = RESOURCE_NOT_FOUND if protocol_version in HANDSHAKE_PROTOCOL_VERSIONS else INVALID_PARAMS
    return MCPError(code=code, message=message, data={"uri": str(uri)})


def _connection_state(session: object) -> dict[str, Any] | None:
    # The SDK keeps per-connection state on the session's `Connection` (`state`: "persists across requests on
    # this connection") but gives request handlers no public way to it.
    state = getattr(getattr(session, "_connection", None), "state", None)
    return state if isinstance(state, dict) else None


async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
    """`logging/setLevel` (2025-11-25 clients): log notifications at `params.level` and above on this connection."""
    state = _connection_state(ctx.session)
    if state is not None:
        state[_LEVEL_KEY] = params.level
    return EmptyResult()


def _wanted(ctx: ServerRequestContext[Any, Any], level: LoggingLevel) -> bool:
    if level not in allowed_log_levels(ctx.protocol_version, ctx.meta):  # 2026-07-28: the request's opt-in
        return False
    if ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
        floor = (_connection_state(ctx.session) or {}).get(_LEVEL_KEY, DEFAULT_LEVEL)
        return LEVELS.index(level) >= LEVELS.index(floor)
    return True


async def notify_log(ctx: ServerRequestContext[Any, Any], level: LoggingLevel, message: str) -> None:
    """Send a log notification about the current request, if the client asked for this level."""
    if ctx.request_id is None or not _wanted(ctx, level):
        return
    notification = LoggingMessageNotification(
        params=LoggingMessageNotificationParams(level=level, data=message, logger=LOGGER)
    )
    try:
        await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
    except Exception:  # a log line must never fail the tool it describes
        log.debug("could not send a log notification", exc_info=True)


class LongToolLog:
    """Server middleware: a log notification when a tool that reads photos or the web starts and ends, so a
    client can show that something is happening (the tools also report progress)."""

    def __init__(self, tools: frozenset[str]) -> None:
        self._tools = tools

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = (
            ctx.params.get("name") if ctx.method == "tools/call" and isinstance(ctx.params, Mapping) else None
        )
        if name not in self._tools:
            return await call_next(ctx)
        started = time.monotonic()
        await notify_log(ctx, "info", f"{name} started")
        result = await call_next(ctx)
        failed = isinstance(result, Mapping) and result.get("isError") is True
        await notify_log(
            ctx,
            "warning" if failed else "info",
            f"{name} {'failed' if failed else 'finished'} after {time.monotonic() - started:.1f} s",
        )
        return result
