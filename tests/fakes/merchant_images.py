"""A local stand-in for a merchant's image host (a shop's CDN), served over HTTPS by the tests.

It serves real pictures of known sizes (a PNG, and a JPEG whose file never ends until the test releases
it, so a reader that waits for the whole file is caught), and the ways a catalog's image links go wrong: a
web page, a 404, a picture declared far too heavy, and one with far too many pixels. It counts the bytes
it sent per path.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

TRAILING_BYTES = 8 * 1024 * 1024  # after the JPEG's own bytes: a reader of headers never needs them
CHUNK = 64 * 1024


def picture(size: tuple[int, int], kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 120, 150)).save(out, format=kind)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` × `height` px (a decompression bomb's first bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@dataclass
class MerchantImages:
    jpeg: bytes = field(default_factory=lambda: picture((640, 480), "JPEG"))
    png: bytes = field(default_factory=lambda: picture((300, 400), "PNG"))
    sent: dict[str, int] = field(default_factory=dict)  # bytes sent per path
    release: threading.Event = field(default_factory=threading.Event)  # lets the JPEG's file go on


def create_app(host: MerchantImages) -> Starlette:
    def count(request: Request, n: int) -> None:
        host.sent[request.url.path] = host.sent.get(request.url.path, 0) + n

    async def large_jpeg(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            count(request, len(host.jpeg))
            yield host.jpeg
            await anyio.to_thread.run_sync(host.release.wait, 30.0)
            for _ in range(TRAILING_BYTES // CHUNK):
                count(request, CHUNK)
                yield b"\0" * CHUNK

        return StreamingResponse(body(), media_type="image/jpeg")

    async def png(request: Request) -> Response:
        count(request, len(host.png))
        return Response(host.png, media_type="image/png")

    async def page(request: Request) -> Response:
        return Response("<html><body>Our serum</body></html>", media_type="text/html")

    async def missing(request: Request) -> Response:
        return Response("not found", status_code=404, media_type="text/plain")

    async def too_heavy(request: Request) -> Response:
        # Declares 600 MB; sends only its first bytes (the reader must stop at the declared length).
        async def body() -> AsyncIterator[bytes]:
            count(request, len(host.jpeg))
            yield host.jpeg

        return StreamingResponse(
            body(), media_type="image/jpeg", headers={"Content-Length": str(600 * 1024 * 1024)}
        )

    async def too_many_pixels(request: Request) -> Response:
        return Response(png_claiming(30_000, 30_000), media_type="image/png")

    return Starlette(
        routes=[
            Route("/products/serum.jpg", large_jpeg),
            Route("/products/cream.png", png),
            Route("/products/serum.html", page),
            Route("/products/gone.jpg", missing),
            Route("/products/heavy.jpg", too_heavy),
            Route("/products/huge.png", too_many_pixels),
        ]
    )
