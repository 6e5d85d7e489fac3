"""Client ID Metadata Documents: an MCP client whose `client_id` is an https URL is described by the
JSON document at that URL, so it needs no registration. Anyone can make Shine fetch such a URL (an
anonymous `/authorize?client_id=https://…`), so it is fetched through `public_http`: public addresses only
(checked at connect time; a Shine only this machine can reach may also read from private networks), no
redirects, a size cap and a short timeout."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx2
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

from shine_mcp.integrations.public_http import PublicHTTP, Refused

log = logging.getLogger("shine.auth")

MAX_DOCUMENT_BYTES = 10 * 1024
FETCH_TIMEOUT = 5.0
DEFAULT_CACHE = timedelta(hours=1)
MIN_CACHE, MAX_CACHE = timedelta(minutes=5), timedelta(hours=24)
# Where a Shine that only this machine can reach may also find documents (a developer's own client).
LOCAL_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


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


def cache_lifetime(cache_control: str | None) -> timedelta:
    directives = (cache_control or "").lower()
    if "no-store" in directives or "no-cache" in directives:
        return MIN_CACHE
    match = re.search(r"max-age=(\d+)", directives)
    if not match:
        return DEFAULT_CACHE
    return min(MAX_CACHE, max(MIN_CACHE, timedelta(seconds=int(match.group(1)))))


async def fetch_client_document(
    url: str, *, allow_private: bool, http: PublicHTTP | None = None
) -> tuple[OAuthClientInformationFull, timedelta]:
    """The client described at `url`, and how long that description may be cached.

    `allow_private` (Shine serves only this machine) also admits `LOCAL_NETWORKS`. `http` is a seam for
    tests (DNS answers, a test certificate authority, a local fake host); by default, public addresses
    and the system's resolver and certificate authorities."""

    def check(response: httpx2.Response) -> None:
        if response.status_code != 200:
            raise ClientDocumentError(f"the client metadata document answered HTTP {response.status_code}")

    try:
        fetched = await (http or PublicHTTP()).get(
            url,
            max_bytes=MAX_DOCUMENT_BYTES,
            timeout=FETCH_TIMEOUT,
            max_redirects=0,
            headers={"Accept": "application/json"},
            also_allow=LOCAL_NETWORKS if allow_private else (),
            check=check,
        )
    except Refused as refused:
        raise ClientDocumentError(
            f"cannot fetch the client metadata document: {refused.message}"
        ) from refused
    return _validate(url, fetched.body), cache_lifetime(fetched.headers.get("cache-control"))


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
