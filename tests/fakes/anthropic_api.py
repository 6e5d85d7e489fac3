"""A local stand-in for Anthropic's Messages API (`POST /v1/messages`), speaking its wire format.

It replays scripted assistant turns, as JSON or as a Server-Sent Events stream with the real event
sequence (message_start, ping, content_block_start, content_block_delta with text_delta or
input_json_delta, content_block_stop, message_delta with stop_reason and usage, message_stop). Like the
real API it checks the key (`x-api-key` or `Authorization: Bearer`), the request shape, that every tool_use is answered by a tool_result in the
next message (and no tool_result answers nothing), and at most four cache_control breakpoints; it
reports prompt-cache creation and reads for a repeated tools+system prefix.

Tests steer it through `FakeAnthropic`: `script` (turns or functions of the request), and read back
`requests` to assert what the loop sent.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.asgi import serve_asgi

API_KEY = "sk-ant-test-not-a-real-key"


@dataclass
class Turn:
    """One scripted assistant message, or an API error."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # default: tool_use when a block is a tool_use, else end_turn
    output_tokens: int = 12
    error: tuple[int, str, str] | None = None  # (HTTP status, error type, message)
    fail_mid_stream: tuple[str, str] | None = None  # (error type, message) sent as an SSE `error` event


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id or "toolu_" + secrets.token_hex(12),
        "name": name,
        "input": arguments,
    }


Script = Turn | Callable[[dict[str, Any]], Turn]


@dataclass
class FakeAnthropic:
    script: list[Script] = field(default_factory=list)
    then: Callable[[dict[str, Any]], Turn] | None = None  # answers once the script has run out
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _cached_prefixes: set[str] = field(default_factory=set)

    def next_turn(self, body: dict[str, Any]) -> Turn:
        if self.script:
            step = self.script.pop(0)
            return step(body) if callable(step) else step
        if self.then is not None:
            return self.then(body)
        return Turn([text("(the fake model's script has run out)")])

    def tool_results(self, request_index: int = -1) -> list[dict[str, Any]]:
        """The tool_result blocks of the last user message of one request."""
        last = self.requests[request_index]["messages"][-1]
        return [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"},
        status_code=status,
    )


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def validate(body: dict[str, Any]) -> str | None:
    """What the real API would reject in this request, or None."""
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    for i, message in enumerate(messages):
        blocks = _blocks(message)
        if not blocks and message.get("role") != "assistant":
            return f"messages.{i}: all messages must have non-empty content"
        if message["role"] == "assistant":
            asked = [b["id"] for b in blocks if b.get("type") == "tool_use"]
            answered: list[str] = []
            if i + 1 < len(messages):
                answered = [
                    str(b.get("tool_use_id"))
                    for b in _blocks(messages[i + 1])
                    if b.get("type") == "tool_result"
                ]
            if asked and sorted(asked) != sorted(answered):
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    + ", ".join(sorted(set(asked) - set(answered)))
                )
        else:
            results = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
            previous = _blocks(messages[i - 1]) if i > 0 and messages[i - 1]["role"] == "assistant" else []
            asked = {str(b.get("id")) for b in previous if b.get("type") == "tool_use"}
            if any(r not in asked for r in results):
                return f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks"
            kinds = [b.get("type") for b in blocks]
            if (
                "tool_result" in kinds
                and "text" in kinds
                and kinds.index("text") < max(j for j, k in enumerate(kinds) if k == "tool_result")
            ):
                return f"messages.{i}: tool_result blocks must come before any text"
    for tool in body.get("tools") or []:
        if not tool.get("name") or (tool.get("input_schema") or {}).get("type") != "object":
            return "tools: each tool needs a name and an input_schema of type object"
    breakpoints = json.dumps(body).count('"cache_control"')
    if breakpoints > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}."
    return None


def _usage(fake: FakeAnthropic, body: dict[str, Any]) -> dict[str, int]:
    prefix = json.dumps([body.get("tools"), body.get("system")], sort_keys=True)
    prefix_tokens = len(prefix) // 4
    rest = len(json.dumps(body["messages"])) // 4
    cached = '"cache_control"' in prefix
    key = hashlib.sha256(prefix.encode()).hexdigest()
    creation = read = 0
    if cached and key in fake._cached_prefixes:
        read = prefix_tokens
    elif cached:
        creation = prefix_tokens
        fake._cached_prefixes.add(key)
    uncached = rest + (0 if cached else prefix_tokens)
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "output_tokens": 0,
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _pieces(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def create_app(fake: FakeAnthropic) -> Starlette:
    async def messages(request: Request) -> Response:
        fake.headers.append(dict(request.headers))
        bearer = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key") or (
            bearer[7:] if bearer.lower().startswith("bearer ") else None
        )
        if (
            key != API_KEY
        ):  # the SDK sends `Authorization: Bearer`; older clients `x-api-key`: both are accepted
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_request_error", "the request body is not valid JSON")
        fake.requests.append(body)
        problem = validate(body)
        if problem:
            return _error(400, "invalid_request_error", problem)
        turn = fake.next_turn(body)
        if turn.error:
            status, kind, message = turn.error
            return _error(status, kind, message)
        usage = _usage(fake, body)
        stop = turn.stop_reason or (
            "tool_use" if any(b["type"] == "tool_use" for b in turn.blocks) else "end_turn"
        )
        message_id = "msg_" + secrets.token_hex(12)
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": turn.blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": turn.output_tokens},
                }
            )

        async def events() -> AsyncIterator[bytes]:
            start = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1},
            }
            yield _sse("message_start", {"type": "message_start", "message": start})
            yield _sse("ping", {"type": "ping"})
            for index, block in enumerate(turn.blocks):
                if block["type"] == "text":
                    yield _sse(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                    for piece in _pieces(block["text"], 7):
                        delta = {"type": "text_delta", "text": piece}
                        yield _sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        )
                else:
                    opened = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                    yield _sse(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": opened},
                    )
                    for piece in ["", *_pieces(json.dumps(block["input"]), 9)]:
                        delta = {"type": "input_json_delta", "partial_json": piece}
                        yield _sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        )
                if turn.fail_mid_stream is not None:
                    kind, message = turn.fail_mid_stream
                    yield _sse("error", {"type": "error", "error": {"type": kind, "message": message}})
                    return
                yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            final = {"output_tokens": turn.output_tokens}
            yield _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": final,
                },
            )
            yield _sse("message_stop", {"type": "message_stop"})

        return StreamingResponse(events(), media_type="text/event-stream", headers={"request-id": "req_fake"})

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


@contextmanager
def running(fake: FakeAnthropic, port: int) -> Iterator[FakeAnthropic]:
    with serve_asgi(create_app(fake), port) as url:
        fake.url = url
        yield fake
