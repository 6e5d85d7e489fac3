"""The rules, in one place: scopes and roles, when `/mcp` needs a token, when the dev sign-in exists,
which scope a tool needs. Plain functions of `Settings` and tool metadata, no I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from shine_mcp.config import Settings

READ, SHOP, ADMIN = "shine:read", "shine:shop", "shine:admin"
SCOPES = (READ, SHOP, ADMIN)
SCOPE_TEXT = {
    READ: "use the advisor and read your own data: skin reports, profile, orders",
    SHOP: "shop for you: change your cart, check out, cancel orders",
    ADMIN: "run the shop's admin tools (only granted to admins)",
}
DEFAULT_SCOPES = (READ, SHOP)  # what a client gets when it asks for nothing in particular
ROLES = ("user", "premium", "admin")

ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
CODE_SECONDS = 5 * 60
REQUEST_SECONDS = 15 * 60  # time a person has to sign in and approve an MCP client

# `_meta` key on a tool that names the scope it needs (`{"shine/scope": "shine:admin"}`).
TOOL_SCOPE_META = "shine/scope"
_SHOP_WORDS = ("cart", "checkout", "order", "refund")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def served_beyond_loopback(settings: Settings) -> bool:
    """Whether anyone but this machine can reach Shine, as far as its configuration says."""
    if not is_loopback_host(settings.host):
        return True
    if settings.public_url and not is_loopback_host(urlsplit(settings.public_url).hostname):
        return True
    return bool(settings.allowed_hosts)


def google_configured(settings: Settings) -> bool:
    return bool(settings.google_client_id and settings.google_client_secret)


def mcp_auth_required(settings: Settings) -> bool:
    """`/mcp` is an OAuth-protected resource unless this is a keyless developer setup on loopback."""
    return settings.mcp_auth == "required" or served_beyond_loopback(settings) or google_configured(settings)


def dev_sign_in_available(settings: Settings) -> bool:
    """The type-an-email sign-in: only without Google and only while nobody but this machine can connect."""
    return not google_configured(settings) and not served_beyond_loopback(settings)


def is_local_request(client_host: str | None, headers: Mapping[str, str]) -> bool:
    """A request from this machine itself, not relayed by a proxy on its behalf."""
    relayed = any(name in headers for name in ("forwarded", "x-forwarded-for", "x-real-ip"))
    return is_loopback_host(client_host) and not relayed


def issuer(settings: Settings) -> str:
    return settings.base_url


def resource_url(settings: Settings) -> str:
    return f"{settings.base_url}/mcp"


def same_resource(requested: str, ours: str) -> bool:
    """RFC 8707 comparison: scheme and host case-insensitive, a trailing slash aside."""

    def canonical(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")

    return canonical(requested) == canonical(ours)


def redirect_uri_problem(uri: str) -> str | None:
    """Why a client may not use this redirect URI, or None. https anywhere; http only to this machine
    (native apps, RFC 8252); an app's own scheme (`cursor://…`) but never a scheme a browser executes."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if parts.fragment:
        return "a redirect URI must not contain a fragment"
    if scheme == "https":
        return None if parts.hostname else "an https redirect URI needs a host"
    if scheme == "http":
        return None if is_loopback_host(parts.hostname) else "http redirect URIs must point at localhost"
    if not scheme or scheme in ("javascript", "data", "file", "vbscript", "about", "blob"):
        return f"the {scheme or 'missing'} scheme is not allowed for redirect URIs"
    return None


def roles_for(stored_roles: Iterable[str], email: str | None, settings: Settings) -> frozenset[str]:
    """Stored roles (premium) plus admin from `SHINE_ADMIN_EMAILS`, read on every request so a removal
    takes effect at once."""
    roles = {"user", *(r for r in stored_roles if r in ROLES and r != "admin")}
    admins = {a.strip().lower() for a in settings.admin_emails}
    if email and email.lower() in admins:
        roles.add("admin")
    return frozenset(roles)


def grantable_scopes(requested: Iterable[str] | None, roles: frozenset[str]) -> list[str]:
    """What a person can grant a client: what it asked for (or the defaults), minus admin for non-admins."""
    wanted = list(requested) if requested else list(DEFAULT_SCOPES)
    return [s for s in SCOPES if s in wanted and (s != ADMIN or "admin" in roles)]


def scope_for_tool(name: str, annotations: Any = None, meta: Mapping[str, Any] | None = None) -> str:
    """The scope a tool call needs. A tool can say so in its `_meta`; otherwise admin tools are named
    `admin_…`, tools that touch carts, orders or checkout need `shine:shop`, and the rest `shine:read`."""
    declared = (meta or {}).get(TOOL_SCOPE_META)
    if declared in SCOPES:
        return str(declared)
    if name.startswith("admin_"):
        return ADMIN
    if any(word in name for word in _SHOP_WORDS) and not getattr(annotations, "read_only_hint", False):
        return SHOP
    return READ
