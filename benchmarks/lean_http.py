"""A load generator's HTTP/1.1 and MCP client that costs little CPU, so the server gets the machine's cores.

The load benchmarks share a 2-core machine with the server and PostgreSQL: every millisecond of CPU the
generator spends per request is a millisecond the workers cannot have. httpx and the MCP SDK's client cost
~1 ms and ~3.5 ms a call (the SDK re-validates each result against the tool's output schema, work a real
client does on its own machine). This client keeps one keep-alive connection, writes a request as one
buffer and parses only the status, the headers it needs and the body. The MCP calls speak the same wire as
the SDK's client (a self-contained `tools/call` POST of protocol revision 2026-07-28, with its envelope
`_meta` and routing headers); a reply is a JSON-RPC response in JSON or in an SSE stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    encode_header_value,
)
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LATEST_PROTOCOL_VERSION,
    PROTOCOL_VERSION_META_KEY,
)

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The connection failed or the server's answer was not HTTP/1.1 this client can read."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    cookies: list[str] = field(default_factory=list)  # each Set-Cookie's name=value
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


class LeanHttp:
    """One keep-alive HTTP/1.1 connection to `base` (http://host:port), opened on first use and again after
    the server closes it. One request at a time: a shopper's calls are sequential."""

    def __init__(self, base: str, *, timeout: float = 120.0) -> None:
        parts = urlsplit(base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._authority = f"{self._host}:{self._port}".encode()
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.cookies: dict[str, str] = {}

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> LeanHttp:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        async with asyncio.timeout(self._timeout):
            answer = await self._send(method, path, body, headers)
            reader = self._reader
            assert reader is not None
            chunks = [chunk async for chunk in self._body(reader, answer)]
            answer.body = b"".join(chunks)
            self._finish(answer)
            return answer

    async def stream(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[Answer, AsyncIterator[bytes]]:
        """The answer's head, and its body as it arrives. Read the body to its end before the next request."""
        async with asyncio.timeout(self._timeout):
            answer = await self._send(method, path, body, headers)
        reader = self._reader
        assert reader is not None

        async def chunks() -> AsyncIterator[bytes]:
            async with asyncio.timeout(self._timeout):
                async for chunk in self._body(reader, answer):
                    yield chunk
            self._finish(answer)

        return answer, chunks()

    async def _send(self, method: str, path: str, body: bytes, headers: dict[str, str] | None) -> Answer:
        head = [f"{method} {path} HTTP/1.1".encode(), b"host: " + self._authority]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}".encode())
        if self.cookies:
            head.append(("cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items())).encode())
        if body or method == "POST":
            head.append(b"content-length: %d" % len(body))
        message = b"\r\n".join(head) + b"\r\n\r\n" + body
        for attempt in (1, 2):  # a kept connection the server closed meanwhile is opened again, once
            fresh = self._writer is None
            if fresh:
                await self._connect()
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
            try:
                writer.write(message)
                await writer.drain()
                line = await reader.readline()
                if not line:
                    raise ConnectionResetError("closed before an answer")
                return await self._head(reader, line)
            except (ConnectionError, OSError) as error:
                await self.close()
                if fresh or attempt == 2:
                    raise HttpError(f"{type(error).__name__}: {error}") from error
        raise AssertionError("unreachable")

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port, limit=MAX_HEAD)
        except OSError as error:
            raise HttpError(f"cannot connect: {error}") from error

    async def _head(self, reader: asyncio.StreamReader, status_line: bytes) -> Answer:
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
        answer = Answer(status=int(parts[1]), headers={})
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                answer.cookies.append(value.split(";", 1)[0])
            answer.headers[name] = value
        return answer

    async def _body(self, reader: asyncio.StreamReader, answer: Answer) -> AsyncIterator[bytes]:
        if answer.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await reader.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                chunk = await reader.readexactly(size + 2)
                yield chunk[:-2]
        elif "content-length" in answer.headers:
            length = int(answer.headers["content-length"])
            if length:
                yield await reader.readexactly(length)
        elif answer.status not in (204, 304):  # the body runs to the end of the connection
            while chunk := await reader.read(65536):
                yield chunk
            answer.headers["connection"] = "close"

    def _finish(self, answer: Answer) -> None:
        for cookie in answer.cookies:
            name, _, value = cookie.partition("=")
            self.cookies[name.strip()] = value.strip()
        if answer.headers.get("connection", "").lower() == "close":
            writer, self._reader, self._writer = self._writer, None, None
            if writer is not None:
                writer.close()


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) of each server-sent event, as its blank line arrives; comments are skipped."""
    buffer = b""
    name, data = "message", []
    async for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode()
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                yield name, "\n".join(data)
                name, data = "message", []


@dataclass(frozen=True)
class ToolResult:
    """A `tools/call` result with the attribute names of the SDK's `CallToolResult` that the benchmarks read."""

    is_error: bool
    content: list[SimpleNamespace]
    structured_content: dict[str, Any] | None


class McpError(Exception):
    """A JSON-RPC error, or an answer that was not a JSON-RPC response: the protocol failed, not the tool."""


class LeanMcp:
    """Tool calls over Streamable HTTP on one kept connection, as the SDK's client sends them."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 120.0) -> None:
        parts = urlsplit(url)
        self._path = parts.path or "/"
        self._authorization = {"authorization": f"Bearer {token}"} if token else {}
        self.http = LeanHttp(f"{parts.scheme}://{parts.netloc}", timeout=timeout)
        self._next_id = 0
        self._meta = {
            PROTOCOL_VERSION_META_KEY: LATEST_PROTOCOL_VERSION,
            CLIENT_INFO_META_KEY: {"name": "shine-bench-load", "version": "1"},
            CLIENT_CAPABILITIES_META_KEY: {},
        }

    async def __aenter__(self) -> LeanMcp:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.http.close()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        self._next_id += 1
        request_id = self._next_id
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments, "_meta": self._meta},
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            MCP_PROTOCOL_VERSION_HEADER: LATEST_PROTOCOL_VERSION,
            MCP_METHOD_HEADER: "tools/call",
            MCP_NAME_HEADER: encode_header_value(name),
            **self._authorization,
        }
        answer, chunks = await self.http.stream("POST", self._path, body, headers)
        message: dict[str, Any] | None = None
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            async for _event, data in sse_events(chunks):
                decoded = json.loads(data)
                if decoded.get("id") == request_id:
                    message = decoded
        else:
            raw = b"".join([chunk async for chunk in chunks])
            message = json.loads(raw) if raw else None
        if answer.status != 200 or message is None or "result" not in message:
            error = (message or {}).get("error")
            if isinstance(error, dict):  # a JSON-RPC error
                said = str(error.get("message"))
            else:  # the HTTP layer's own answer (e.g. an OAuth challenge: error, error_description)
                said = (
                    f"{error}: {(message or {}).get('error_description', '')}"
                    if error
                    else "no JSON-RPC result"
                )
            raise McpError(f"http {answer.status}: {said}"[:200])
        result = message["result"]
        return ToolResult(
            is_error=bool(result.get("isError")),
            content=[SimpleNamespace(**block) for block in result.get("content") or []],
            structured_content=result.get("structuredContent"),
        )
