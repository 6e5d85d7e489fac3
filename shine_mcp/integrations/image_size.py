"""Measuring a merchant's pictures at import: each image URL's width and height, read from its first bytes.

The fetch goes through `public_http` (public addresses only, checked at connect time and after every
redirect, https only, one deadline): only as many bytes as Pillow needs to read the picture's header are
downloaded (a few KB; at most `HEADER_BYTES`), never the picture itself. A link that cannot be measured
(unreachable, a web page, too heavy, too many pixels) gives a warning for the import report; the product
keeps its picture, with its size unknown.

Not here: the catalog records (`store/records.py`) and the import command (`shine_cli`), which apply the
sizes and print the warnings.
"""

from __future__ import annotations

import io
import ssl
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import anyio
import httpx2
from PIL import Image, UnidentifiedImageError

from shine_mcp import __version__
from shine_mcp.integrations.public_http import (
    MAX_REDIRECTS,
    AddressPolicy,
    PublicHTTP,
    Refused,
    Resolver,
    system_resolver,
)

HEADER_BYTES = 1024 * 1024  # JPEG metadata (EXIF, ICC, XMP) may come before the size: up to ~1 MB
MAX_FILE_BYTES = 25 * 1024 * 1024  # a declared length above this is no picture for a product card
MAX_PIXELS = 50_000_000
TIMEOUT_SECONDS = 10.0
CONCURRENCY = 8


@dataclass(frozen=True)
class Size:
    width: int
    height: int


class NotMeasured(Exception):
    """Why a picture could not be measured, in words for the merchant who imports it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.3g} MB"


def header_size(prefix: bytes) -> Size | None:
    """The picture's size from its first bytes; None while they are not enough (or it is no picture Pillow
    knows). Pillow reads the header only: nothing is decoded. Too many pixels is `NotMeasured`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(prefix)) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise NotMeasured(f"the picture has far too many pixels (over {MAX_PIXELS // 1_000_000} MP)") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error):
        # Not (yet) a header Pillow can read: a truncated one raises any of these.
        return None
    if width < 1 or height < 1:
        return None
    if width * height > MAX_PIXELS:
        raise NotMeasured(
            f"the picture is {width} × {height} px; use one under {MAX_PIXELS // 1_000_000} megapixels"
        )
    return Size(width, height)


def _check_picture_answer(response: httpx2.Response) -> None:
    if response.status_code != 200:
        raise NotMeasured(f"{response.url.host} answered {response.status_code} {response.reason_phrase}")
    media = (response.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media in ("text/html", "application/xhtml+xml"):
        raise NotMeasured("the link leads to a web page, not a picture: link the image file itself")
    if media == "image/svg+xml":
        raise NotMeasured(
            "an SVG drawing has no size in pixels: give image_width and image_height in the file"
        )
    if (
        media
        and not media.startswith("image/")
        and media not in ("application/octet-stream", "binary/octet-stream")
    ):
        raise NotMeasured(f"the link returned {media}, not a picture")
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FILE_BYTES:
        raise NotMeasured(
            f"the picture is {_mb(int(declared))}, too heavy for a product card; link one under "
            f"{_mb(MAX_FILE_BYTES)}"
        )


class ImageMeasurer:
    """Measures one picture per call; see the module docstring for the rules.

    `policy`, `resolver` and `ssl_context` are seams for tests (a local fake image host with its own
    certificate authority); an import uses the defaults: public addresses, the system resolver, the system's
    trusted certificate authorities."""

    def __init__(
        self,
        *,
        timeout: float = TIMEOUT_SECONDS,
        policy: AddressPolicy | None = None,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self._http = PublicHTTP(
            policy=policy,
            resolver=resolver,
            ssl_context=ssl_context,
            user_agent=f"Shine/{__version__} (catalog picture size)",
        )

    async def measure(self, url: str) -> Size:
        """The picture's size, or `NotMeasured` saying why not."""
        found: list[Size] = []

        def enough(prefix: bytes) -> bool:
            size = header_size(prefix)
            if size is not None:
                found.append(size)
            return size is not None

        try:
            fetched = await self._http.get(
                url,
                max_bytes=HEADER_BYTES,
                timeout=self.timeout,
                max_redirects=MAX_REDIRECTS,
                headers={"Accept": "image/*"},
                check=_check_picture_answer,
                enough=enough,
            )
        except Refused as refused:
            if refused.problem == "too_large":
                raise NotMeasured(
                    f"no picture size in its first {_mb(HEADER_BYTES)}: not an image file Shine can read"
                ) from refused
            raise NotMeasured(refused.message) from refused
        if found:
            return found[-1]
        size = header_size(fetched.body)  # the whole (small) file arrived before its size was found
        if size is None:
            raise NotMeasured("the file is not a picture Shine can read (JPEG, PNG, WebP, GIF, AVIF…)")
        return size


class Pictured(Protocol):
    """A catalog record with a picture: a product or one of its variants (`store/records.py`)."""

    image_url: str | None
    image_width: int | None
    image_height: int | None


async def measure_pictures(
    items: Iterable[tuple[str, Pictured]], measurer: ImageMeasurer, *, concurrency: int = CONCURRENCY
) -> list[str]:
    """Give each (label, record) with an https picture and no size yet the size measured from its URL
    (each URL fetched once, a few at a time). The warnings for the import report, one per picture that could
    not be measured, naming the records; those keep the picture, with its size unknown."""
    wanted: dict[str, list[tuple[str, Pictured]]] = {}
    for label, item in items:
        url = item.image_url
        if url and url.startswith("https://") and (item.image_width is None or item.image_height is None):
            wanted.setdefault(url, []).append((label, item))
    results: dict[str, Size | str] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(url: str) -> None:
        async with limiter:
            try:
                results[url] = await measurer.measure(url)
            except NotMeasured as failed:
                results[url] = failed.message

    async with anyio.create_task_group() as group:
        for url in wanted:
            group.start_soon(one, url)
    warnings_out: list[str] = []
    for url, users in wanted.items():
        result = results[url]
        if isinstance(result, Size):
            for _, item in users:
                item.image_width, item.image_height = result.width, result.height
        else:
            names = ", ".join(dict.fromkeys(label for label, _ in users))
            warnings_out.append(f"{names}: picture {url} not measured ({result}); imported without its size")
    return warnings_out
