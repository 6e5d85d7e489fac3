"""MCP Apps over the protocol: the tools that show a card name it in `_meta.ui`, every card is a readable
`ui://` page of the Apps MIME type whose CSP allows only Shine's own pictures, and the server says so."""

from __future__ import annotations

from mcp import Client

from shine_mcp.config import Settings

APP_MIME = "text/html;profile=mcp-app"


async def test_card_tools_name_a_ui_resource_the_server_serves(client: Client, settings: Settings) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    shown = {name: (tool.meta or {}).get("ui", {}).get("resourceUri") for name, tool in tools.items()}
    for name in (
        "search_products",
        "get_product",
        "recommend_products",
        "build_routine",
        "view_cart",
        "analyze_skin",
        "get_skin_report",
    ):
        card = shown[name]
        assert card and card.startswith("ui://"), name
        content = (await client.read_resource(card)).contents[0]
        assert content.mime_type == APP_MIME
        assert "ui/initialize" in content.text  # type: ignore[union-attr]
        assert (content.meta or {})["ui"]["csp"] == {"resourceDomains": [settings.base_url]}
    assert shown["update_profile"] is None  # a tool with nothing to show keeps a plain result


async def test_server_advertises_the_apps_extension(client: Client) -> None:
    capabilities = client.server_capabilities
    assert capabilities is not None and capabilities.extensions is not None
    assert "io.modelcontextprotocol/ui" in capabilities.extensions
