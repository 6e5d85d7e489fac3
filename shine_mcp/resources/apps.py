"""MCP Apps: the `ui://` cards (products, routine, cart, skin report) and which tools show them.

A host that supports MCP Apps renders the card a tool names in `_meta.ui.resourceUri` and posts the tool
result to it; every other client gets the same structured content and text as before. Cards draw from the
tool's structured content in the browser: the web widget's cards (`agent/cards.py`) are shaped in Python
from the same results, but a `ui://` page is static HTML and `shine_mcp` must not import `agent`, so the
two read the same fields rather than share code."""

from __future__ import annotations

from urllib.parse import urlsplit

from mcp.server.apps import Apps, ResourceCsp

from shine_mcp.config import Settings
from shine_mcp.resources.apps_page import card_page

CARDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # kind: (title, description, tools that show it)
    "products": (
        "Shine product cards",
        "Products with picture, price, the reasons with their evidence, and Add to cart.",
        ("search_products", "get_product", "recommend_products"),
    ),
    "routine": (
        "Shine routine",
        "A morning and evening routine: steps in order, schedule notes and the total.",
        ("build_routine",),
    ),
    "cart": (
        "Shine cart",
        "The cart with its lines and subtotal, and Checkout, which opens the payment page.",
        ("view_cart", "add_to_cart", "update_cart_item", "remove_from_cart"),
    ),
    "skin-report": (
        "Shine skin report",
        "What the photo measured, with ranges and confidence, and what was withheld and why.",
        ("analyze_skin", "get_skin_report"),
    ),
}


def uri(kind: str) -> str:
    return f"ui://shine/{kind}.html"


def card_of(tool: str) -> dict[str, str] | None:
    """The `_meta.ui` of a tool that shows a card (stamped where tools are listed), else None."""
    kind = next((kind for kind, (_, _, tools) in CARDS.items() if tool in tools), None)
    return {"resourceUri": uri(kind)} if kind else None


def extension(settings: Settings) -> Apps:
    """The MCP Apps extension for `MCPServer(extensions=...)`: it advertises `io.modelcontextprotocol/ui`
    and serves the cards. The tools are Shine's own, registered by their families; `card_of` names
    their card."""
    base = urlsplit(settings.base_url)
    # Product pictures come from Shine's own image route; nothing else is fetched.
    csp = ResourceCsp(resource_domains=[f"{base.scheme}://{base.netloc}"])
    apps = Apps()
    for kind, (title, description, _) in CARDS.items():
        apps.add_html_resource(
            uri(kind), card_page(kind, title), name=kind, title=title, description=description, csp=csp
        )
    return apps
