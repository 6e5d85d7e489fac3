"""Server middleware around every `tools/call`, whatever the transport: refuse an OAuth client whose
token lacks the tool's scope, and write admin actions and deletions to the audit log.

The HTTP front door (`gate.py`) already answers most scope misses with a `403 insufficient_scope` the
client can step up from; this is the backstop for requests it does not read (very large bodies).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from shine_mcp.auth import audit
from shine_mcp.auth.identity import Caller, caller_of
from shine_mcp.auth.policy import ADMIN, scope_for_tool
from shine_mcp.config import Settings
from shine_mcp.services import Services

log = logging.getLogger("shine.auth")


@dataclass(frozen=True)
class ToolInfo:
    scope: str
    audited_as: str | None  # "admin_action", "data_deleted" or None


def classify(name: str, annotations: Any, meta: dict[str, Any] | None) -> ToolInfo:
    scope = scope_for_tool(name, annotations, meta)
    if scope == ADMIN:
        return ToolInfo(scope, "admin_action")
    if getattr(annotations, "destructive_hint", None) is True or "delete" in name:
        return ToolInfo(scope, "data_deleted")
    return ToolInfo(scope, None)


class ToolCatalog:
    """What each tool of a server needs, read once from its tool list (tools are registered at build)."""

    def __init__(self) -> None:
        self._server: MCPServer | None = None
        self._tools: dict[str, ToolInfo] | None = None

    def attach(self, server: MCPServer) -> None:
        self._server, self._tools = server, None

    async def get(self, name: str) -> ToolInfo | None:
        if self._tools is None:
            if self._server is None:
                return None
            self._tools = {
                t.name: classify(t.name, t.annotations, t.meta) for t in await self._server.list_tools()
            }
        return self._tools.get(name)


def _is_error(result: HandlerResult) -> bool:
    if isinstance(result, CallToolResult):
        return result.is_error
    if isinstance(result, dict):
        return bool(result.get("isError") or result.get("is_error"))
    return False


def _refusal(caller: Caller | None, info: ToolInfo) -> str | None:
    if info.scope == ADMIN and (caller is None or not caller.is_admin):
        return "this tool is for the shop's admins; ask the merchant to run it"
    if caller is not None and caller.source == "oauth" and info.scope not in caller.scopes:
        return f"this tool needs the {info.scope} permission; reconnect the MCP client and grant it"
    return None


class ToolGuard:
    def __init__(self, settings: Settings, services: Services, catalog: ToolCatalog) -> None:
        self._settings, self._services, self._catalog = settings, services, catalog

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or not isinstance(ctx.params, dict):
            return await call_next(ctx)
        info = await self._catalog.get(str(ctx.params.get("name", "")))
        if info is None:
            return await call_next(ctx)
        try:
            caller = caller_of(ctx.request, ctx.meta, self._settings)
        except ToolError:
            caller = None  # the tool itself answers "sign in first" if it needs a person
        refusal = _refusal(caller, info)
        if refusal is not None:
            return CallToolResult(content=[TextContent(type="text", text=refusal)], is_error=True)
        result = await call_next(ctx)
        if info.audited_as is not None:
            try:
                await audit.record(
                    self._services.db,
                    info.audited_as,  # type: ignore[arg-type]
                    actor_id=caller.user_id if caller else None,
                    client_id=caller.client_id if caller else None,
                    tool=ctx.params.get("name"),
                    succeeded=not _is_error(result),
                )
            except Exception:  # the audit write must not turn a done deletion into an error
                log.exception("could not write the audit entry for %s", ctx.params.get("name"))
        return result
