"""Which `Host` headers Shine answers (DNS-rebinding protection), decided once for every route.

Loopback names always; beyond them only what the merchant named: the host of `SHINE_PUBLIC_URL` and each
entry of `SHINE_ALLOWED_HOSTS`. The front door (`shine_mcp.auth.gate`) checks every request against this
list, and the MCP SDK's own check on `/mcp` is built from the same list (`transport_security`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings

from shine_mcp.config import Settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class AllowedHost:
    name: str  # lower case; an IPv6 literal keeps its brackets
    port: int | None = None  # None: any port


def split_host(value: str) -> tuple[str, int | None] | None:
    """`name[:port]` of a Host header (or a configured entry), lower-cased; None when it cannot be one."""
    value = value.strip().lower()
    if not value or any(c in "/\\@?#" or not 33 <= ord(c) <= 126 for c in value):
        return None
    if value.startswith("["):  # an IPv6 literal: [::1]:8000
        name, bracket, rest = value.partition("]")
        if not bracket:
            return None
        name += bracket
    else:
        name, colon, port_text = value.partition(":")
        rest = colon + port_text
    port: int | None = None
    if rest:
        if not (rest.startswith(":") and rest[1:].isdigit() and 0 < int(rest[1:]) < 65536):
            return None
        port = int(rest[1:])
    name = name.rstrip(".")  # "shop.example." is "shop.example"
    return (name, port) if name and name != "[]" else None


def allowed_hosts(settings: Settings) -> tuple[AllowedHost, ...]:
    """Every host name Shine answers to: loopback, the public URL's host, then `SHINE_ALLOWED_HOSTS`."""
    found: list[AllowedHost] = [AllowedHost(name) for name in LOOPBACK_HOSTS]
    if settings.public_url:
        netloc = urlsplit(settings.public_url).netloc.rpartition("@")[2]
        parsed = split_host(netloc)
        if parsed is not None:
            found.append(AllowedHost(parsed[0]))  # a proxy may or may not pass the public port on
    for entry in settings.allowed_hosts:
        parsed = split_host(entry)
        if parsed is not None:
            found.append(AllowedHost(*parsed))
    return tuple(dict.fromkeys(found))


def host_allowed(header: str | None, allowed: tuple[AllowedHost, ...]) -> bool:
    """Whether a request's `Host` header names this Shine (missing or malformed: no)."""
    parsed = split_host(header) if header else None
    if parsed is None:
        return False
    name, port = parsed
    return any(a.name == name and (a.port is None or a.port == port) for a in allowed)


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """The MCP SDK's Host and Origin check on `/mcp`, from the same list the front door uses."""
    hosts: list[str] = []
    origins: list[str] = []
    for allowed in allowed_hosts(settings):
        if allowed.port is None:
            hosts += [allowed.name, f"{allowed.name}:*"]
            origins += [f"https://{allowed.name}", f"https://{allowed.name}:*"]
            origins += [f"http://{allowed.name}", f"http://{allowed.name}:*"]
        else:
            hosts.append(f"{allowed.name}:{allowed.port}")
            origins += [f"https://{allowed.name}:{allowed.port}", f"http://{allowed.name}:{allowed.port}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
