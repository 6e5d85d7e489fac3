"""A local stand-in for a website hosting a photo, served over HTTPS by the tests.

It serves the photo it is given and the ways real hosts go wrong for a photo fetcher: redirects (to
anywhere the test names, or in a loop), a web page instead of an image, a 404, a body larger than the
limit with and without a declared length, a compressed body, and a response that stalls until the
test releases it. It records each request's path so tests can tell what was (not) fetched.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class FakeImageHost:
    photo: bytes
    big_size: int = 0  # bytes served by /big and /big-declared
    paths: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # each request's Host header
    stalled: threading.Event = field(default_factory=threading.Event)  # /stall.jpg has sent its first bytes
    release: threading.Event = field(default_factory=threading.Event)  # lets /stall.jpg finish


def create_app(host: FakeImageHost) -> Starlette:
    async def record(request: Request) -> None:
        host.paths.append(request.url.path)
        host.user_agents.append(request.headers.get("user-agent", ""))
        host.hosts.append(request.headers.get("host", ""))

    async def photo(request: Request) -> Response:
        await record(request)
        return Response(host.photo, media_type="image/jpeg")

    async def untyped(request: Request) -> Response:
        await record(request)
        return Response(host.photo)  # no Content-Type at all

    async def page(request: Request) -> Response:
        await record(request)
        return Response("<html><body><img src='/photo.jpg'></body></html>", media_type="text/html")

    async def missing(request: Request) -> Response:
        await record(request)
        return Response("not found", status_code=404, media_type="text/plain")

    async def redirect(request: Request) -> Response:
        await record(request)
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def loop(request: Request) -> Response:
        await record(request)
        return RedirectResponse("/loop", status_code=302)

    async def big(request: Request) -> Response:
        await record(request)

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            while sent < host.big_size:
                chunk = b"\xff" * min(65536, host.big_size - sent)
                sent += len(chunk)
                yield chunk

        return StreamingResponse(chunks(), media_type="image/jpeg")  # chunked: no Content-Length

    async def big_declared(request: Request) -> Response:
        await record(request)
        return Response(b"\xff" * host.big_size, media_type="image/jpeg")

    async def compressed(request: Request) -> Response:
        await record(request)
        return Response(
            gzip.compress(host.photo), media_type="image/jpeg", headers={"Content-Encoding": "gzip"}
        )

    async def stall(request: Request) -> Response:
        await record(request)

        async def trickle() -> AsyncIterator[bytes]:
            yield host.photo[:100]
            host.stalled.set()
            await anyio.to_thread.run_sync(host.release.wait, 30.0)
            yield host.photo[100:]

        return StreamingResponse(trickle(), media_type="image/jpeg")

    return Starlette(
        routes=[
            Route("/photo.jpg", photo),
            Route("/untyped", untyped),
            Route("/page.html", page),
            Route("/missing.jpg", missing),
            Route("/redirect", redirect),
            Route("/loop", loop),
            Route("/big", big),
            Route("/big-declared", big_declared),
            Route("/compressed.jpg", compressed),
            Route("/stall.jpg", stall),
        ]
    )
