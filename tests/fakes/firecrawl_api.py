"""A local stand-in for the parts of Firecrawl's v2 REST API that `firecrawl-mcp` calls for Shine.

Endpoints: `POST /v2/search` (with `sources: [{"type": "images"}]` it answers `data.images[]` items with
`imageUrl`, `imageWidth`, `imageHeight`, `url`, `title`, `position`; web sources answer `data.web[]`) and
`POST /v2/scrape` (`data.markdown`, `data.rawHtml` / `data.html` when asked in `formats`, and
`data.metadata` with `title`, `description`, `ogImage`, `sourceURL`, `statusCode` and every `<meta>` tag).
Requests must carry `Authorization: Bearer <API_KEY>`; errors use Firecrawl's envelope
`{"success": false, "error": "..."}`.

Results come from `fixtures/firecrawl/`: `images.json` (image search results) and `pages/<host><path>.html`
(pages to scrape). Tests steer it through `FakeFirecrawl.fail_next(path, fault)` — `"500"`, `"429"` (with
`Retry-After`), `"402"` (out of credits), `"stall"` (answers after `stall_seconds`), `"malformed"` (a 200
whose body is not JSON) — and read back `requests` and `credits_used`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi import serve_asgi

API_KEY = "fc-test0shine0fake0key0123456789"
FIXTURES = Path(__file__).parent / "fixtures" / "firecrawl"
Fault = Literal["500", "429", "402", "stall", "malformed"]


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    status: int = 0


@dataclass
class FakeFirecrawl:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    faults: list[tuple[str, Fault]] = field(default_factory=list)
    credits_used: int = 0
    stall_seconds: float = 10.0
    retry_after: int = 1
    images: list[dict[str, Any]] = field(
        default_factory=lambda: json.loads((FIXTURES / "images.json").read_text())["images"]
    )
    # Set when a stalled request arrives: lets a test act mid-call (the server runs in another thread).
    stalled: threading.Event = field(default_factory=threading.Event)

    def fail_next(self, path: str, fault: Fault, times: int = 1) -> None:
        self.faults.extend([(path, fault)] * times)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def _fault_for(self, path: str) -> Fault | None:
        for i, (prefix, fault) in enumerate(self.faults):
            if path.startswith(prefix):
                del self.faults[i]
                return fault
        return None


def _words(text: str) -> set[str]:
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in re.findall(r"[a-z0-9]+", text.lower())}


def _host_matches(host: str, domains: list[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def search_images(fake: FakeFirecrawl, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Images whose title shares a word with the query, best overlap first (stable), like a search engine."""
    query = _words(str(body.get("query", "")))
    include = [d.lower() for d in body.get("includeDomains") or []]
    exclude = [d.lower() for d in body.get("excludeDomains") or []]
    scored = []
    for index, image in enumerate(fake.images):
        host = (urlsplit(image["url"]).hostname or "").lower()
        if include and not _host_matches(host, include):
            continue
        if exclude and _host_matches(host, exclude):
            continue
        overlap = len(query & _words(image["title"]))
        if overlap:
            scored.append((-overlap, index, image))
    scored.sort(key=lambda item: (item[0], item[1]))
    limit = int(body.get("limit") or 10)
    return [{**image, "position": n + 1} for n, (_, _, image) in enumerate(scored[:limit])]


class _Page(HTMLParser):
    """Just enough of an HTML-to-markdown pass to look like Firecrawl's output (hidden text included)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.meta: dict[str, str] = {}
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._prefix = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "meta" and values.get("content") is not None:
            key = values.get("property") or values.get("name")
            if key:
                self.meta[key] = values["content"]
        elif tag in ("h1", "h2", "h3", "h4"):
            self._flush()
            self._prefix = "#" * int(tag[1]) + " "
        elif tag in ("p", "div", "li", "header", "footer", "main", "nav"):
            self._flush()
        elif tag == "img":
            self._flush()
            self.lines.append(f"![{values.get('alt', '')}]({values.get('src', '')})")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in ("h1", "h2", "h3", "h4", "p", "div", "li"):
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        else:
            self._text.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        if text:
            self.lines.append(self._prefix + text)
        self._text, self._prefix = [], ""

    def markdown(self) -> str:
        self._flush()
        return "\n\n".join(self.lines)


_OG_KEYS = {"og:title": "ogTitle", "og:image": "ogImage", "og:site_name": "ogSiteName", "og:type": "ogType"}


def scrape_page(body: dict[str, Any]) -> dict[str, Any]:
    url = str(body.get("url", ""))
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/index"
    file = FIXTURES / "pages" / f"{(parts.hostname or '').lower()}{path}"
    file = file if file.suffix == ".html" else file.with_name(file.name + ".html")
    status = 200
    if file.is_file() and FIXTURES in file.resolve().parents:
        html = file.read_text()
    else:
        status, html = (
            404,
            "<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>",
        )
    page = _Page()
    page.feed(html)
    page.close()
    metadata: dict[str, Any] = {**page.meta}
    metadata.update({camel: page.meta[og] for og, camel in _OG_KEYS.items() if og in page.meta})
    metadata.update(
        title=page.title.strip(),
        sourceURL=url,
        url=url,
        statusCode=status,
        contentType="text/html; charset=utf-8",
        scrapeId=secrets.token_hex(8),
    )
    if "description" in page.meta:
        metadata["description"] = page.meta["description"]
    data: dict[str, Any] = {"metadata": metadata}
    formats = [f if isinstance(f, str) else f.get("type") for f in body.get("formats") or ["markdown"]]
    if "markdown" in formats:
        data["markdown"] = page.markdown()
    if "rawHtml" in formats:
        data["rawHtml"] = html
    if "html" in formats:
        data["html"] = html
    return data


def create_app(fake: FakeFirecrawl) -> Starlette:
    async def handle(request: Request) -> Response:
        path = request.url.path
        try:
            body = await request.json()
        except ValueError:
            body = {}
        record = Recorded(path, body if isinstance(body, dict) else {})
        fake.requests.append(record)

        def answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
            record.status = status
            return JSONResponse(payload, status_code=status, headers=headers)

        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return answer(401, {"success": False, "error": "Unauthorized: Invalid token"})
        fault = fake._fault_for(path)
        if fault == "500":
            return answer(500, {"success": False, "error": "Internal server error"})
        if fault == "429":
            return answer(
                429,
                {"success": False, "error": "Rate limit exceeded. Please retry after the Retry-After delay."},
                {"Retry-After": str(fake.retry_after)},
            )
        if fault == "402":
            return answer(
                402,
                {
                    "success": False,
                    "error": "Insufficient credits to perform this request. Upgrade your plan.",
                },
            )
        if fault == "malformed":
            record.status = 200
            return Response("<html>502 Bad Gateway</html>{not json", media_type="application/json")
        if fault == "stall":
            fake.stalled.set()
            await asyncio.sleep(fake.stall_seconds)
        if path == "/v2/search":
            sources = [s if isinstance(s, str) else s.get("type") for s in body.get("sources") or ["web"]]
            data: dict[str, Any] = {}
            if "images" in sources:
                data["images"] = search_images(fake, body)
            if "web" in sources:
                data["web"] = [
                    {"url": i["url"], "title": i["title"], "description": i["title"]}
                    for i in search_images(fake, body)
                ]
            fake.credits_used += 2
            return answer(200, {"success": True, "data": data, "creditsUsed": 2, "id": secrets.token_hex(8)})
        fake.credits_used += 1
        return answer(200, {"success": True, "data": scrape_page(body)})

    return Starlette(
        routes=[Route("/v2/search", handle, methods=["POST"]), Route("/v2/scrape", handle, methods=["POST"])]
    )


@contextmanager
def running(fake: FakeFirecrawl, port: int) -> Iterator[FakeFirecrawl]:
    with serve_asgi(create_app(fake), port) as url:
        fake.url = url
        yield fake
