"""The shop page a shopper chats from, remembered in their browser so the pages they come back to after
paying (or not) link back to it rather than to a fixed home page.

The widget sends its page's URL with each message; `/api/chat` keeps it in a cookie only when it is a page
of this Shine or of a shop in SHINE_ALLOWED_ORIGINS, and the return pages check it again before linking to
it (a cookie is the browser's to change): never a way to send anyone to another site.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

from starlette.requests import Request

from shine_mcp.config import Settings

MAX_LENGTH = 1000
_UNSAFE = set('"<>\\`{}|^') | {chr(c) for c in range(0x21)} | {"\x7f"}


def cookie_name(settings: Settings) -> str:
    return "__Host-shine_shop_page" if settings.base_url.startswith("https://") else "shine_shop_page"


def own_origins(request: Request, settings: Settings) -> set[str]:
    """This Shine's origins: its configured public URL and the one this request came in on."""
    public = urlsplit(settings.base_url)
    return {f"{public.scheme}://{public.netloc}", f"{request.url.scheme}://{request.headers.get('host', '')}"}


def allowed_page(value: object, settings: Settings, own: set[str]) -> str | None:
    """`value` without its fragment when it is an http(s) page of `own` or an allowed shop origin, else None."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH or not value.isascii():
        return None
    if _UNSAFE & set(value):
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    origins = {o.rstrip("/").lower() for o in (*own, *settings.allowed_origins)}
    if f"{parts.scheme}://{parts.netloc}".lower() not in origins:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def cookie(settings: Settings, page: str) -> str:
    """A `Set-Cookie` value, with the chat cookie's reach (SameSite=None for shops on another origin)."""
    secure = settings.base_url.startswith("https://")
    same_site = "None" if secure and settings.allowed_origins else "Lax"
    return (
        f"{cookie_name(settings)}={quote(page, safe='')}; Path=/; Max-Age={settings.session_days * 86400}; "
        f"HttpOnly; SameSite={same_site}" + ("; Secure" if secure else "")
    )


def remembered(request: Request, settings: Settings) -> str | None:
    """The page this browser last chatted from, if it still checks out."""
    raw = request.cookies.get(cookie_name(settings))
    return allowed_page(unquote(raw), settings, own_origins(request, settings)) if raw else None
