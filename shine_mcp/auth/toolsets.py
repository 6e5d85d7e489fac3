"""Which tools a connection is offered: the shopper's tools for everyone, the shop's tools (merchant, admin)
only for admins. `tools/list` shows a caller only their toolsets and a call to a tool outside them is
refused; the admin tools still check the caller themselves (`require_admin`, `ToolGuard`).

- an OAuth client: the shopper tools, plus merchant and admin when the person is an admin and granted
  the client `shine:admin`;
- the web shell's signed identity: by the person's roles;
- the local user (stdio, in-process, keyless loopback `/mcp`): `SHINE_TOOLSETS`, `["shopper"]` unless the
  operator opts in (`shine mcp --toolsets shopper,merchant,admin`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ListToolsResult, TextContent

from shine_mcp.auth.identity import Caller, caller_of
from shine_mcp.auth.policy import ADMIN, scope_for_tool
from shine_mcp.config import Settings

Toolset = Literal["shopper", "merchant", "admin"]
TOOLSETS: tuple[Toolset, ...] = get_args(Toolset)
# A tool may name its toolset in `_meta`; otherwise shop-admin tools are merchant tools when they run the
# shop's trade (orders, money, catalog) and admin tools otherwise, and every other tool is the shopper's.
TOOLSET_META = "shine/toolset"
MERCHANT_TOOLS = frozenset({"refund_order", "sales_report", "admin_import_product_page"})


def toolset_of(name: str, meta: Mapping[str, Any] | None = None) -> Toolset:
    declared = (meta or {}).get(TOOLSET_META)
    if declared in TOOLSETS:
        return declared  # type: ignore[no-any-return]
    if scope_for_tool(name, None, meta) != ADMIN:
        return "shopper"
    return "merchant" if name in MERCHANT_TOOLS else "admin"


def toolsets_for(caller: Caller | None, settings: Settings) -> frozenset[Toolset]:
    """The toolsets a caller is offered; `None` (an HTTP caller who has not signed in) gets the shopper's."""
    if caller is None:
        return frozenset({"shopper"})
    if caller.source in ("local", "loopback"):
        return frozenset(settings.toolsets)
    if caller.is_admin and (caller.source != "oauth" or ADMIN in caller.scopes):
        return frozenset(TOOLSETS)
    return frozenset({"shopper"})


def _caller(ctx: ServerRequestContext[Any, Any], settings: Settings) -> Caller | None:
    try:
        return caller_of(ctx.request, ctx.meta, settings)
    except ToolError:
        return None


class Toolsets:
    """Server middleware: filters `tools/list` to the caller's toolsets and refuses calls outside them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._server: MCPServer | None = None
        self._toolset: dict[str, Toolset] | None = None

    def attach(self, server: MCPServer) -> None:
        self._server, self._toolset = server, None

    async def _toolset_of(self, name: str) -> Toolset | None:
        if self._toolset is None:
            if self._server is None:
                return None
            self._toolset = {t.name: toolset_of(t.name, t.meta) for t in await self._server.list_tools()}
        return self._toolset.get(name)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/list":
            offered = toolsets_for(_caller(ctx, self._settings), self._settings)
            return _only(await call_next(ctx), offered)
        if ctx.method != "tools/call" or not isinstance(ctx.params, Mapping):
            return await call_next(ctx)
        toolset = await self._toolset_of(str(ctx.params.get("name", "")))
        caller = _caller(ctx, self._settings)
        if toolset is None or toolset in toolsets_for(caller, self._settings):
            return await call_next(ctx)
        # Remote callers lack a shop toolset for want of the admin role or scope: `ToolGuard` refuses them in
        # the words that say how to get it. Only the local user's toolsets are the operator's choice.
        if caller is None or caller.source not in ("local", "loopback"):
            return await call_next(ctx)
        if toolset != "shopper" and not caller.is_admin:
            return await call_next(ctx)
        return CallToolResult(
            content=[
                TextContent(
                    type="text",
                    text=f"this connection does not offer the {toolset} tools; the person running Shine can "
                    f"add them with `shine mcp --toolsets` (SHINE_TOOLSETS)",
                )
            ],
            is_error=True,
        )


def _only(result: HandlerResult, offered: frozenset[Toolset]) -> HandlerResult:
    def keep(name: str, meta: Mapping[str, Any] | None) -> bool:
        return toolset_of(name, meta) in offered

    if isinstance(result, ListToolsResult):
        return result.model_copy(update={"tools": [t for t in result.tools if keep(t.name, t.meta)]})
    if isinstance(result, dict) and isinstance(result.get("tools"), list):
        tools = [t for t in result["tools"] if keep(str(t.get("name", "")), t.get("_meta"))]
        return {**result, "tools": tools}
    return result
