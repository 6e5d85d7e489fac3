"""How `tools/list` shows Shine's tools: a title for each, descriptions without source indentation,
schemas without the per-property `title`s pydantic generates (they repeat the property's name), and the
MCP Apps card (`_meta.ui`) of the tools that show one."""

from __future__ import annotations

import inspect
from typing import Any

from mcp.types import Tool

from shine_mcp.resources.apps import card_of

# Titles live here, by tool name, so one table shows what every client puts on its tool buttons.
TITLES: dict[str, str] = {
    "search_products": "Search products",
    "get_product": "Product details",
    "get_account": "Who am I signed in as",
    "admin_list_audit_events": "Audit log (admin)",
    "analyze_skin": "Analyse a skin photo",
    "get_skin_report": "Skin report",
    "list_skin_reports": "My skin reports",
    "compare_skin_reports": "Compare skin reports",
    "delete_skin_report": "Delete a skin report",
    "check_ingredients": "Check ingredients",
    "get_profile": "My skin profile",
    "update_profile": "Update my skin profile",
    "rate_product": "Rate a product",
    "export_my_data": "Export my data",
    "delete_my_data": "Delete my data",
    "close_my_account": "Close my account",
    "recommend_products": "Recommend products",
    "build_routine": "Build a routine",
    "add_to_cart": "Add to cart",
    "update_cart_item": "Change a cart quantity",
    "remove_from_cart": "Remove from cart",
    "view_cart": "View cart",
    "checkout": "Check out",
    "get_order": "Order details",
    "list_orders": "My orders",
    "cancel_order": "Cancel an order",
    "request_refund": "Ask for a refund",
    "refund_order": "Refund an order (admin)",
    "sales_report": "Sales report (admin)",
    "admin_clicks_report": "Buy-button clicks (admin)",
    "subscribe": "Subscribe and save",
    "subscribe_to_routine": "Subscribe to a routine",
    "list_subscriptions": "My subscriptions",
    "update_subscription": "Change a subscription",
    "pause_subscription": "Pause a subscription",
    "cancel_subscription": "Cancel a subscription",
    "join_premium": "Join premium",
    "premium_membership": "My premium membership",
    "change_premium_plan": "Switch premium plan",
    "cancel_premium": "Cancel premium",
    "manage_payment_methods": "Manage payment methods",
    "track_skin_progress": "My skin progress (premium)",
    "browse_web_images": "Find images on the web",
    "find_similar_looks": "Find similar looks",
    "read_product_page": "Read a product page",
    "admin_import_product_page": "Import a product page (admin)",
}


def listed(tool: Tool) -> Tool:
    """The tool as clients see it. A title set at registration wins over the table."""
    return tool.model_copy(
        update={
            "title": tool.title or TITLES.get(tool.name),
            "description": inspect.cleandoc(tool.description) if tool.description else tool.description,
            "input_schema": without_titles(tool.input_schema),
            "output_schema": without_titles(tool.output_schema) if tool.output_schema else None,
            "meta": {**(tool.meta or {}), "ui": card} if (card := card_of(tool.name)) else tool.meta,
        }
    )


def without_titles(schema: Any, *, names: bool = False) -> Any:
    """`schema` without its `title` annotations (validation is unchanged). The keys of `properties` and
    `$defs` are names, so a property called `title` stays; values (`default`, `enum`...) are left alone."""
    if names and isinstance(schema, dict):
        return {key: without_titles(value) for key, value in schema.items()}
    if isinstance(schema, dict):
        return {
            key: value if key in _VALUES else without_titles(value, names=key in ("properties", "$defs"))
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [without_titles(item) for item in schema]
    return schema


_VALUES = frozenset({"default", "const", "enum", "examples", "required"})
