"""The HTML pages Shine serves, rendered from the Jinja2 templates in `web_shell/templates/` (autoescaped:
a product name, a shop name or an error text is always text, never markup), and the ONE place their
security headers are set.

Every page gets `SECURITY_HEADERS` and a Content-Security-Policy built from `CSP`: nothing loads or runs
unless a page names it (the widget sign-in popup's one script, by its nonce; the demo shop's own script,
styles and product pictures), forms post only back to Shine, and no other site may frame a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
Look = Literal["account", "checkout", "portal"]

SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` with a page's own form
    # posts, which the sign-in pages' origin check would take for another site. No other site learns the
    # page's address (an order's return link carries a token).
    "Referrer-Policy": "same-origin",
}
CSP: Mapping[str, str] = {
    "default-src": "'none'",
    "style-src": "'unsafe-inline'",
    "img-src": "'self'",  # the favicon
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page (and its test), not shows blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def security_headers(**directives: str) -> dict[str, str]:
    """`SECURITY_HEADERS` and the CSP, with a page's own directives (`script_src="'nonce-…'"` for
    `script-src`) added or replacing the defaults."""
    policy = {**CSP, **{name.replace("_", "-"): value for name, value in directives.items()}}
    csp = "; ".join(f"{name} {value}" for name, value in policy.items())
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


def render(
    request: Request,
    template: str,
    *,
    title: str,
    status: int = 200,
    look: Look = "account",
    csp: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """`template` (a page extending base.html) as a response with the security headers. `csp` holds the
    page's own CSP directives; `headers` any other headers it needs (never security ones)."""
    values = {"title": title, "look": look, "back_to_shop": None, **context}
    return templates.TemplateResponse(
        request,
        template,
        values,
        status_code=status,
        headers={**(headers or {}), **security_headers(**(csp or {}))},
    )


def notice(
    request: Request,
    title: str,
    *paragraphs: str,
    status: int = 200,
    look: Look = "account",
    heading: str | None = None,
    link: tuple[str, str] | None = None,
    back_to_shop: str | None = None,
    back_label: str = "Back to the shop",
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page that only says something: a heading (the title unless given), plain-text paragraphs, and an
    optional link (`(href, label)`) or way back to the shop."""
    return render(
        request,
        "notice.html",
        title=title,
        heading=heading or title,
        status=status,
        look=look,
        headers=headers,
        paragraphs=paragraphs,
        link={"href": link[0], "label": link[1]} if link else None,
        back_to_shop=back_to_shop,
        back_label=back_label,
    )
