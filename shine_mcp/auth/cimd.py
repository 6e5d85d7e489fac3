"""Client ID Metadata Documents: an MCP client whose `client_id` is an https URL is described by the
JSON document at that URL, so it needs no registration. Fetched with SSRF protection (public addresses
only, unless Shine itself only serves this machine), no redirects, a size cap and a short timeout."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

log = logging.getLogger("shine.auth")

MAX_DOCUMENT_BYTES = 10 * 1024
FETCH_TIMEOUT = 5.0
DEFAULT_CACHE = timedelta(hours=1)
MIN_CACHE, MAX_CACHE = timedelta(minutes=5), timedelta(hours=24)


class ClientDocumentError(Exception):
    """The document could not be fetched or is not a valid description of this client."""


def is_metadata_url(client_id: str) -> bool:
    parts = urlsplit(client_id)
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.path not in ("", "/")
        and not parts.fragment
    )


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def _check_host(host: str, port: int, allow_private: bool) -> None:
    if allow_private:
        return
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ClientDocumentError(f"cannot resolve {host}") from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(_public(a.split("%")[0]) for a in addresses):
        raise ClientDocumentError(f"{host} is not a public address")


def cache_lifetime(cache_control: str | None) -> timedelta:
    directives = (cache_control or "").lower()
    if "no-store" in directives or "no-cache" in directives:
        return MIN_CACHE
    match = re.search(r"max-age=(\d+)", directives)
    if not match:
        return DEFAULT_CACHE
    return min(MAX_CACHE, max(MIN_CACHE, timedelta(seconds=int(match.group(1)))))


async def fetch_client_document(
    url: str, *, allow_private: bool
) -> tuple[OAuthClientInformationFull, timedelta]:
    """The client described at `url`, and how long that description may be cached."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    await _check_host(parts.hostname, parts.port or 443, allow_private)
    try:
        async with (
            httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ClientDocumentError(
                    f"the client metadata document answered HTTP {response.status_code}"
                )
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ClientDocumentError("the client metadata document is larger than 10 KB")
            cache_control = response.headers.get("cache-control")
    except httpx2.HTTPError as exc:
        raise ClientDocumentError(f"cannot fetch the client metadata document: {type(exc).__name__}") from exc
    return _validate(url, body), cache_lifetime(cache_control)


def _validate(url: str, body: bytes) -> OAuthClientInformationFull:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ClientDocumentError("the client metadata document is not JSON") from exc
    if not isinstance(document, dict):
        raise ClientDocumentError("the client metadata document is not a JSON object")
    if document.get("client_id") != url:
        raise ClientDocumentError("the document's client_id is not the URL it was fetched from")
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise ClientDocumentError("a client metadata document must not carry a client secret")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientDocumentError(
            "only public clients (token_endpoint_auth_method 'none') can use a metadata URL"
        )
    if not document.get("redirect_uris"):
        raise ClientDocumentError("the client metadata document lists no redirect_uris")
    try:
        client = OAuthClientInformationFull.model_validate({**document, "token_endpoint_auth_method": "none"})
    except ValidationError as exc:
        raise ClientDocumentError(
            f"the client metadata document is invalid: {exc.error_count()} errors"
        ) from exc
    if "authorization_code" not in client.grant_types:
        raise ClientDocumentError("the client metadata document does not allow the authorization_code grant")
    return client
