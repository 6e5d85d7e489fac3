"""`build_server(settings)`: the Shine MCP server with every tool family and resource registered."""

from __future__ import annotations

import difflib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from shine_mcp import __version__
from shine_mcp.auth.tool_guard import ToolCatalog, ToolGuard
from shine_mcp.config import Settings
from shine_mcp.resources import catalog as catalog_resources
from shine_mcp.services import Services
from shine_mcp.tools import account as account_tools
from shine_mcp.tools import advice as advice_tools
from shine_mcp.tools import browse as browse_tools
from shine_mcp.tools import catalog as catalog_tools
from shine_mcp.tools import checkout as checkout_tools
from shine_mcp.tools import ingredients as ingredient_tools
from shine_mcp.tools import profile as profile_tools
from shine_mcp.tools import skin as skin_tools

if TYPE_CHECKING:
    from shine_mcp.auth.authority import Authority

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
    ('search_productsArguments') and links to its documentation."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: {invalid_arguments(cause)}") from cause


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
            close = difflib.get_close_matches(value.lower(), expected, n=1, cutoff=0.6)
            if close:
                problem += f"; did you mean {close[0]!r}?"
        problems.append(problem)
    text = "; ".join(problems)
    return text + ("" if text.endswith("?") else ".") + " Fix the arguments and call again."


def build_server(
    settings: Settings | None = None, services: Services | None = None, *, authority: Authority | None = None
) -> MCPServer:
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
    server = ShineServer(
        name="shine",
        title="Shine skincare advisor",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level=settings.log_level,
        lifespan=lifespan,
        auth_server_provider=authority.provider if protected and authority else None,
        auth=authority.auth_settings() if protected and authority else None,
        middleware=[ToolGuard(settings, services, catalog)],
    )
    catalog.attach(server)
    catalog_tools.register(server, services)
    account_tools.register(server, services)
    skin_tools.register(server, services)
    ingredient_tools.register(server, services)
    profile_tools.register(server, services)
    advice_tools.register(server, services)
    checkout_tools.register(server, services)
    browse_tools.register(server, services)
    catalog_resources.register(server, services)
    return server
