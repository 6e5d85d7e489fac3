"""The demo shop page at `/` (a storefront with the chat widget embedded, so `make run` shows the whole
product), the widget script itself at `/widget.js`, which any shop embeds with one `<script>` tag,
Shine's `/favicon.ico` for the pages it serves, and the drawn packshot of any product at
`/images/products/{id}.svg` (for products whose catalog entry has no picture)."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shine_mcp.services import Services
from shine_mcp.store import packshots
from shine_mcp.store.catalog import get_product
from shine_mcp.store.clicks import AffiliateLinks
from shine_mcp.store.search import SearchFilters, search_products
from shine_mcp.store.tables import Product, ProductRow
from shine_mcp.store.views import summary_of, where_to_buy
from web_shell.templating import security_headers, templates

STATIC = Path(__file__).parent / "static"
# The shop page runs the widget's script from Shine, shows product pictures from anywhere and talks to Shine.
DEMO_HEADERS = security_headers(
    default_src="'self'",
    img_src="'self' https: data: blob:",
    style_src="'self' 'unsafe-inline'",
    connect_src="'self'",
)
SHOWCASE = 8
PRODUCT_ID = re.compile(r"prd_[A-Za-z0-9_-]{1,36}")
# The URL names the drawing's version, so a fetch of the current one may be kept for good; an old or
# missing version gets the current drawing, revalidated soon.
IMAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",  # the widget shows them on the merchant's own site
}
FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=300"
TILE_SIZES = "(max-width: 30rem) 45vw, 14rem"


@cache
def _favicon() -> bytes:
    return (STATIC / "favicon.ico").read_bytes()


@cache
def _static(name: str) -> tuple[str, str]:
    text = (STATIC / name).read_text(encoding="utf-8")
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


def _tile(product: Product | ProductRow, links: AffiliateLinks) -> dict[str, Any]:
    """What demo.html shows of a product: its picture, brand, name, price and, for a product sold at another
    merchant, the click-out link (source "shop") and its disclosure line."""
    p = summary_of(product)
    where = where_to_buy(product, links, source="shop") if links else None
    return {"image": p.image, "brand": p.brand, "name": p.name, "price": p.price.display, "buy": where}


def routes(services: Services) -> list[BaseRoute]:
    async def demo_page(request: Request) -> Response:
        result = await search_products(services.db, SearchFilters(), limit=SHOWCASE)
        links = services.settings.affiliate_links
        tiles = [_tile(p, links) for p in result.products]
        context = {"tiles": tiles, "sizes": TILE_SIZES}
        return templates.TemplateResponse(request, "demo.html", context, headers=DEMO_HEADERS)

    async def widget(request: Request) -> Response:
        script, etag = _static("widget.js")
        headers = {
            "ETag": f'"{etag}"',
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == f'"{etag}"':
            return Response(status_code=304, headers=headers)
        return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)

    async def packshot(request: Request) -> Response:
        product_id = request.path_params["product_id"]
        product = await get_product(services.db, product_id) if PRODUCT_ID.fullmatch(product_id) else None
        if product is None:
            return Response("No such product.", status_code=404, media_type="text/plain")
        current = packshots.version(product)
        etag = f'"{current}"'
        cache = FOREVER if request.query_params.get("v") == current else REVALIDATE
        headers = {**IMAGE_HEADERS, "ETag": etag, "Cache-Control": cache}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(packshots.packshot_svg(product), media_type="image/svg+xml", headers=headers)

    async def favicon(_request: Request) -> Response:
        headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
        return Response(_favicon(), media_type="image/x-icon", headers=headers)

    return [
        Route("/", demo_page, methods=["GET"]),
        Route("/widget.js", widget, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route(packshots.PATH_PREFIX + "{product_id}.svg", packshot, methods=["GET"]),
    ]
