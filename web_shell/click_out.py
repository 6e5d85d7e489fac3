"""`GET /out/{product_id}?src=…&conv=…&variant=…`: the "Buy at <merchant>" link. It records the click and
redirects to the product's own merchant page, with the site's affiliate parameters added.

The destination is never read from the request: only a product's stored `buy_url`, and only when it is an
https page of a site in SHINE_AFFILIATE_LINKS (`shine_mcp/store/clicks.py` checks it). A click keeps the
product, the source (widget, mcp, shop), the conversation id and the time; a user id only when the shopper
is signed in; never an IP address or browser details.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.services import Services
from shine_mcp.store.catalog import get_product, get_variants_by_id
from shine_mcp.store.clicks import product_link, record_click, source_of
from web_shell.auth import web_identity
from web_shell.chat import chat_cookie_name, read_chat_token
from web_shell.templating import notice

NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
# The merchant learns nothing of the page or conversation the shopper came from.
REDIRECT_HEADERS = {**NO_STORE, "Referrer-Policy": "no-referrer"}


def _not_available(request: Request, base_url: str) -> Response:
    return notice(
        request,
        "Link not available",
        "The shop has no page at another store for this product. Ask the shop's advisor for where to buy it.",
        heading="This link is not available",
        status=404,
        back_to_shop=f"{base_url or ''}/",
        back_label="Go back to the shop",
        headers={"X-Robots-Tag": "noindex"},
    )


def routes(services: Services) -> list[BaseRoute]:
    settings = services.settings

    async def click_out(request: Request) -> Response:
        product_id = str(request.path_params["product_id"])
        product = await get_product(services.db, product_id) if len(product_id) <= 60 else None
        if product is None:
            return _not_available(request, settings.base_url)
        variant = None
        if variant_id := request.query_params.get("variant"):
            variant = (await get_variants_by_id(services.db, [variant_id[:60]])).get(variant_id)
            if variant is not None and variant.product_id != product.id:
                variant = None
        link = product_link(product, settings.affiliate_links, variant)
        if link is None:
            return _not_available(request, settings.base_url)
        identity = await web_identity(request, services)
        await record_click(
            services.db,
            product_id=product.id,
            variant_id=variant.id if variant is not None else None,
            merchant=link.merchant,
            source=source_of(request.query_params.get("src")),
            # The widget's conversation from its signed chat cookie (a top-level navigation carries it); else
            # the id the link names (an MCP client's own conversation id).
            conversation_id=read_chat_token(services, request.cookies.get(chat_cookie_name(services)))
            or request.query_params.get("conv"),
            user_id=identity.user_id if identity is not None and not identity.guest else None,
        )
        return RedirectResponse(link.url, status_code=302, headers=REDIRECT_HEADERS)

    return [Route("/out/{product_id}", click_out, methods=["GET"])]
