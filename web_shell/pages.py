"""The demo shop page at `/` (a storefront with the chat widget embedded, so `make run` shows the whole
product) and the widget script itself at `/widget.js`, which any shop embeds with one `<script>` tag."""

from __future__ import annotations

import hashlib
import html
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from shine_mcp.services import Services
from shine_mcp.store.search import SearchFilters, search_products
from shine_mcp.store.views import summary_of

STATIC = Path(__file__).parent / "static"
DEMO_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data: blob:; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
SHOWCASE = 8


@cache
def _static(name: str) -> tuple[str, str]:
    text = (STATIC / name).read_text(encoding="utf-8")
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


def _tile(product: object) -> str:
    p = summary_of(product)  # type: ignore[arg-type]
    image = (
        f'<img src="{html.escape(p.image_url)}" alt="" loading="lazy">'
        if p.image_url and p.image_url.startswith("https://")
        else f'<div class="placeholder" aria-hidden="true">{html.escape(p.category[:1].upper())}</div>'
    )
    return (
        f'<li class="tile">{image}<p class="brand">{html.escape(p.brand)}</p>'
        f'<h3>{html.escape(p.name)}</h3><p class="price">{html.escape(p.price.display)}</p></li>'
    )


def routes(services: Services) -> list[BaseRoute]:
    async def demo_page(_request: Request) -> Response:
        page, _ = _static("demo.html")
        result = await search_products(services.db, SearchFilters(), limit=SHOWCASE)
        tiles = "\n".join(_tile(p) for p in result.products) or "<li>The catalog is empty.</li>"
        return HTMLResponse(page.replace("<!--PRODUCTS-->", tiles), headers=DEMO_HEADERS)

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

    return [Route("/", demo_page, methods=["GET"]), Route("/widget.js", widget, methods=["GET"])]
