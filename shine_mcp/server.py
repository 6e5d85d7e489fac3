"""`build_server(settings)`: the Shine MCP server with every tool family and resource registered."""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolResult,
    GetPromptResult,
    InputRequiredResult,
    SetLevelRequestParams,
    Tool,
)
from pydantic import AnyUrl, ValidationError

from shine_mcp import __version__
from shine_mcp.auth.tool_guard import ToolCatalog, ToolGuard
from shine_mcp.auth.toolsets import Toolsets
from shine_mcp.config import Settings
from shine_mcp.protocol import LongToolLog, resource_not_found, set_level
from shine_mcp.resources import apps, completions, prompts
from shine_mcp.resources import catalog as catalog_resources
from shine_mcp.services import Services
from shine_mcp.store.db import DatabaseBusy, busy_reason, database_busy
from shine_mcp.tool_listing import listed
from shine_mcp.tools import account as account_tools
from shine_mcp.tools import advice as advice_tools
from shine_mcp.tools import browse as browse_tools
from shine_mcp.tools import catalog as catalog_tools
from shine_mcp.tools import checkout as checkout_tools
from shine_mcp.tools import ingredients as ingredient_tools
from shine_mcp.tools import membership as membership_tools
from shine_mcp.tools import profile as profile_tools
from shine_mcp.tools import progress as progress_tools
from shine_mcp.tools import skin as skin_tools
from shine_mcp.tools import subscriptions as subscription_tools
from shine_mcp.vocabulary import meaning_among

if TYPE_CHECKING:
    from shine_mcp.auth.authority import Authority

log = logging.getLogger("shine.tools")

# Tools that read photos or the web: the client is told when they start and end (log notifications).
LONG_TOOLS = frozenset(
    {
        "analyze_skin",
        "browse_web_images",
        "find_similar_looks",
        "read_product_page",
        "admin_import_product_page",
    }
)

INSTRUCTIONS = """Shine is a skincare advisor for a shop's catalog.
Search products with search_products (it understands phrases like 'fragrance-free', 'under $25',
'for dry skin') and read the full ingredient list with get_product. Quote prices as returned.
For "what should I use", call recommend_products or build_routine: they apply the person's profile
(save what they tell you with update_profile: skin type, concerns, allergies, budget, pregnancy) and
explain each product with sources. check_ingredients tells what should not be used together.
Skin advice is cosmetic guidance, not medical diagnosis: for a changing mole, bleeding, pain or
infection, tell the user to see a dermatologist."""


class ShineServer(MCPServer):
    """The SDK's server, with argument errors that read like the rest of Shine's: which argument, what is
    wrong, what was sent, the closest allowed value. Pydantic's own text names an internal model
    ('search_productsArguments') and links to its documentation. Prompts and resources answer with the
    JSON-RPC error codes the spec gives, and 2025-11-25 clients may set the log level."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Told (tool, outcome, seconds) after every call: the web shell's metrics. Outcome is "ok",
        # "tool_error" (the caller can fix it) or "error" (a crash); unknown tool names count as "unknown".
        self.tool_observers: list[Callable[[str, str, float], None]] = []
        self._listed: dict[str, tuple[Tool, Tool]] = {}  # name: (the SDK's listing, as clients see it)
        # Removed in 2026-07-28 (log levels ride each request's `_meta`); served for 2025-11-25 clients.
        self._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)

    async def list_tools(self) -> list[Tool]:
        shown = []
        for tool in await super().list_tools():
            source, as_listed = self._listed.get(tool.name, (None, tool))
            if source != tool:  # reshaping every schema costs ~20 ms a list: done once per tool
                as_listed = listed(tool)
                self._listed[tool.name] = (tool, as_listed)
            shown.append(as_listed)
        return shown

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        started, outcome = time.perf_counter(), "error"
        try:
            result = await super().call_tool(name, arguments, context)
            outcome = "tool_error" if getattr(result, "is_error", False) else "ok"
            return result
        except ToolError as exc:
            if not isinstance(exc, UnexpectedToolError):
                outcome = "tool_error"
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) and cause is not None and database_busy(cause):
                # A locked database, no free connection, or a statement PostgreSQL cancelled at its timeout:
                # not a crash, and the same call a moment later may well work. Say so (the web shell's 503).
                outcome = "tool_error"
                log.warning("tool %s: %s; the caller was told to retry", name, busy_reason(cause))
                raise ToolError(f"Error executing tool {name}: {DatabaseBusy()}") from cause
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {invalid_arguments(cause)}") from cause
        finally:
            tool = name if self._tool_manager.get_tool(name) is not None else "unknown"
            for observe in self.tool_observers:
                observe(tool, outcome, time.perf_counter() - started)

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        """The SDK answers every prompt problem with error code 0; the spec says -32602 for a wrong name or
        arguments, -32603 for the server's own failure."""
        prompt = next((p for p in await self.list_prompts() if p.name == name), None)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"no prompt named {name!r}; prompts/list lists them")
        missing = [a.name for a in prompt.arguments or [] if a.required and not (arguments or {}).get(a.name)]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"the {name} prompt needs {', '.join(missing)}")
        try:
            return await super().get_prompt(name, arguments, context)
        except MCPError:
            raise
        except ValueError as exc:
            cause = exc.__cause__.__cause__ if exc.__cause__ is not None else None
            if isinstance(cause, ValidationError):
                raise MCPError(code=INVALID_PARAMS, message=invalid_arguments(cause)) from exc
            raise MCPError(code=INTERNAL_ERROR, message=f"the {name} prompt could not be made") from exc

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        """A missing resource is -32002 for 2025-11-25 clients, -32602 from 2026-07-28 on."""
        try:
            return await super().read_resource(uri, context)
        except ResourceNotFoundError as exc:
            version = context.protocol_version if context is not None else None
            if version is None:  # a direct call, not a protocol request
                raise
            raise resource_not_found(str(exc), uri, version) from exc


def invalid_arguments(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"]).lstrip(".")
        where = where or "the arguments"
        message = str(detail["msg"])
        message = message[0].lower() + message[1:] if message else "is not valid"
        message = re.sub(r"^input should", "should", message)
        problem = f"`{where}` {message}"
        value = detail.get("input")
        if detail["type"] != "missing" and isinstance(value, str | int | float | bool):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "...'"
            problem += f" (got {shown})"
        expected = re.findall(r"'([^']+)'", str(detail.get("ctx", {}).get("expected", "")))
        if isinstance(value, str) and expected:
            close = meaning_among(value, expected) or difflib.get_close_matches(
                value.lower(), expected, n=1, cutoff=0.6
            )
            if close:
                problem += f"; did you mean {close[0]!r}?"
        problems.append(problem)
    text = "; ".join(problems)
    return text + ("" if text.endswith("?") else ".") + " Fix the arguments and call again."


def build_server(
    settings: Settings | None = None, services: Services | None = None, *, authority: Authority | None = None
) -> ShineServer:
    """`authority` (from the web shell) makes `/mcp` an OAuth-protected resource when its policy says so;
    without it (stdio, in-process, scripts) the server has no HTTP auth and `current_user` decides."""
    settings = settings or Settings()
    services = services or Services(settings)

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[Services]:
        async with services.running():
            yield services

    protected = authority is not None and authority.protects_mcp
    catalog = authority.catalog if authority is not None else ToolCatalog()
    toolsets = Toolsets(settings)
    server = ShineServer(
        name="shine",
        title="Shine skincare advisor",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=settings.log_level,
        lifespan=lifespan,
        auth_server_provider=authority.provider if protected and authority else None,
        auth=authority.auth_settings() if protected and authority else None,
        middleware=[toolsets, ToolGuard(settings, services, catalog), LongToolLog(LONG_TOOLS)],
        extensions=[apps.extension(settings)],
    )
    catalog.attach(server)
    toolsets.attach(server)
    catalog_tools.register(server, services)
    account_tools.register(server, services)
    skin_tools.register(server, services)
    ingredient_tools.register(server, services)
    profile_tools.register(server, services)
    advice_tools.register(server, services)
    checkout_tools.register(server, services)
    subscription_tools.register(server, services)
    membership_tools.register(server, services)
    progress_tools.register(server, services)
    browse_tools.register(server, services)
    catalog_resources.register(server, services)
    prompts.register(server, services)
    completions.register(server, services)
    return server
