"""Downloading a photo from an https URL someone gave `analyze_skin`, without becoming an SSRF proxy.

The fetch itself goes through `public_http` (public addresses only, checked at connect time and after
every redirect, https only, no compressed bodies, size and time limits). Here: what a photo answer must
look like (status 200, an image content type or nothing more specific than binary) and messages that tell
the person who sent the URL what to do instead.

Not here: deciding whether the bytes are a usable photo (that is `shine_mcp.models`).
"""

from __future__ import annotations

import ssl

import httpx2

from shine_mcp import __version__
from shine_mcp.integrations.public_http import (
    MAX_REDIRECTS,
    AddressPolicy,
    Problem,
    PublicHTTP,
    Refused,
    Resolver,
    system_resolver,
)

__all__ = ["MAX_REDIRECTS", "FetchRefused", "ImageFetcher"]

# Content types a photo may arrive with; the bytes' magic decides the format afterwards.
IMAGE_TYPES = ("image/",)
BINARY_TYPES = ("application/octet-stream", "binary/octet-stream")
SEND_IT = "send the photo itself instead"
# What the sender can do about each refusal, after the reason.
ADVICE: dict[Problem, str] = {
    "url": "use the photo's https:// address or send the photo itself",
    "credentials": "use a link that needs no sign-in",
    "unresolved": SEND_IT,
    "address": "send the photo itself (base64) instead",
    "redirects": SEND_IT,
    "too_large": "link or send a smaller JPEG",
    "compressed": "link a plain image file or send the photo itself",
    "timeout": "try again or send the photo itself",
    "certificate": SEND_IT,
    "connection": "check that the link works in a browser, or send the photo itself",
}


class FetchRefused(Exception):
    """The URL cannot be used; `message` says why and what to do instead, for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check_photo_answer(response: httpx2.Response) -> None:
    if response.status_code != 200:
        raise FetchRefused(
            f"{response.url.host} answered {response.status_code} {response.reason_phrase} for the photo URL; "
            "check that the link works in a browser without signing in"
        )
    value = response.headers.get("content-type")
    if not value:
        return
    media = value.split(";", 1)[0].strip().lower()
    if media.startswith(IMAGE_TYPES) or media in BINARY_TYPES:
        return
    if media in ("text/html", "application/xhtml+xml"):
        raise FetchRefused(
            "the URL leads to a web page, not a photo: open the photo itself and copy its address "
            "(it usually ends in .jpg, .png or .webp)"
        )
    raise FetchRefused(f"the URL returned {media}, not a photo; link the image file itself")


class ImageFetcher:
    """Fetches one photo per call; see the module docstring for the rules.

    `policy`, `resolver` and `ssl_context` are seams for tests (a local fake server with its own
    certificate authority); a running Shine uses the defaults: public addresses, the system resolver,
    the system's trusted certificate authorities."""

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        policy: AddressPolicy | None = None,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_bytes, self.timeout = max_bytes, timeout
        self._http = PublicHTTP(
            policy=policy,
            resolver=resolver,
            ssl_context=ssl_context,
            user_agent=f"Shine/{__version__} (skin analysis photo fetch)",
        )

    async def fetch(self, url: str) -> bytes:
        """The photo's bytes, or `FetchRefused` with a reason a person can act on."""
        try:
            fetched = await self._http.get(
                url,
                max_bytes=self.max_bytes,
                timeout=self.timeout,
                max_redirects=MAX_REDIRECTS,
                headers={"Accept": "image/jpeg, image/png, image/webp, image/*;q=0.8"},
                check=_check_photo_answer,
            )
        except Refused as refused:
            raise FetchRefused(f"{refused.message}; {ADVICE[refused.problem]}") from refused
        return fetched.body
