"""`AnthropicModel`: the Messages API with streaming, tool use and prompt caching behind the model seam."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, cast

import anthropic
import httpx2

from agent.model import (
    Finish,
    Message,
    ModelError,
    ModelEvent,
    StopReason,
    TextChunk,
    ToolCall,
    ToolSpec,
    Usage,
)

log = logging.getLogger("shine.advisor")

CACHE = {"type": "ephemeral"}
_STOP_REASONS = {"end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "pause_turn"}


def _with_cache_breakpoint(messages: Sequence[Message]) -> list[Message]:
    """Mark the end of the conversation so the next step of the same reply reads it from the cache."""
    marked = [dict(m) for m in messages]
    if not marked:
        return marked
    last = marked[-1]
    content = last.get("content")
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": CACHE}]
    elif isinstance(content, list) and content:
        blocks = copy.copy(content)
        blocks[-1] = {**blocks[-1], "cache_control": CACHE}
        last["content"] = blocks
    return marked


def _tools_param(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools
    ]
    if listed:  # one breakpoint after the last tool caches the whole list (tools come before system)
        listed[-1] = {**listed[-1], "cache_control": CACHE}
    return listed


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(
        input_tokens=int(getattr(raw, "input_tokens", 0) or 0),
        output_tokens=int(getattr(raw, "output_tokens", 0) or 0),
        cache_creation_input_tokens=int(getattr(raw, "cache_creation_input_tokens", 0) or 0),
        cache_read_input_tokens=int(getattr(raw, "cache_read_input_tokens", 0) or 0),
    )


def _explain(exc: anthropic.APIError) -> ModelError:
    """A message a shopper (or the merchant reading logs) can act on; never the key or the raw body."""
    if isinstance(exc, anthropic.AuthenticationError):
        return ModelError("the advisor's Anthropic key was refused; the shop needs to fix ANTHROPIC_API_KEY")
    if isinstance(exc, anthropic.PermissionDeniedError):
        return ModelError("the advisor's Anthropic key may not use this model; check SHINE_MODEL")
    if isinstance(exc, anthropic.NotFoundError):
        return ModelError("the advisor's model was not found; check SHINE_MODEL")
    if isinstance(exc, anthropic.RateLimitError):
        return ModelError("the advisor is receiving too many requests; try again in a minute", retryable=True)
    if isinstance(exc, anthropic.APITimeoutError):
        return ModelError("the advisor's model took too long to answer; try again", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelError("the advisor's model could not be reached; try again in a moment", retryable=True)
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code >= 500:
            return ModelError(
                f"the advisor's model is unavailable (HTTP {exc.status_code}); try again in a moment",
                retryable=True,
            )
        return ModelError(f"the advisor's model rejected the request (HTTP {exc.status_code})")
    return ModelError("the advisor's model failed to answer; try again")


class AnthropicModel:
    kind: Literal["anthropic"] = "anthropic"

    def __init__(self, client: anthropic.AsyncAnthropic, model: str, *, max_tokens: int = 2048) -> None:
        self.client, self.name, self.max_tokens = client, model, max_tokens

    async def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        params: dict[str, Any] = {
            "model": self.name,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": system, "cache_control": CACHE}],
            "messages": _with_cache_breakpoint(messages),
            "stream": True,
        }
        if tools:
            params["tools"] = _tools_param(tools)
        try:
            stream = await self.client.messages.create(**params)
        except anthropic.APIError as exc:
            log.warning("Anthropic request failed: %s", type(exc).__name__)
            raise _explain(exc) from exc

        usage = Usage()
        stop_reason: StopReason = "end_turn"
        tool_blocks: dict[int, dict[str, Any]] = {}
        try:
            async with stream:
                async for event in stream:
                    kind = event.type
                    if kind == "message_start":
                        usage = _usage(event.message.usage)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tool_blocks[event.index] = {"id": block.id, "name": block.name, "json": []}
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            yield TextChunk(delta.text)
                        elif delta.type == "input_json_delta" and event.index in tool_blocks:
                            tool_blocks[event.index]["json"].append(delta.partial_json)
                    elif kind == "content_block_stop" and event.index in tool_blocks:
                        yield _tool_call(tool_blocks.pop(event.index))
                    elif kind == "message_delta":
                        if event.delta.stop_reason in _STOP_REASONS:
                            stop_reason = cast(StopReason, event.delta.stop_reason)
                        # message_delta carries the final output count (cumulative), input counts once more
                        final = _usage(event.usage)
                        usage.output_tokens = final.output_tokens or usage.output_tokens
                        if final.input_tokens:
                            usage.input_tokens = final.input_tokens
        except anthropic.APIError as exc:
            log.warning("Anthropic stream failed: %s", type(exc).__name__)
            raise _explain(exc) from exc
        except httpx2.HTTPError as exc:  # the connection broke mid-stream (the SDK wraps only the request)
            log.warning("Anthropic stream broke: %s", type(exc).__name__)
            raise ModelError(
                "the connection to the advisor's model broke; try again", retryable=True
            ) from exc
        yield Finish(stop_reason, usage)


def _tool_call(block: dict[str, Any]) -> ToolCall:
    raw = "".join(block["json"]).strip()
    try:
        arguments = json.loads(raw) if raw else {}
    except ValueError:
        # A truncated call (max_tokens mid-JSON): the tool will answer that arguments are missing.
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {}
    return ToolCall(id=str(block["id"]), name=str(block["name"]), input=arguments)


def build_anthropic_model(
    api_key: str, model: str, *, base_url: str | None = None, max_tokens: int = 2048
) -> AnthropicModel:
    client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=2)
    return AnthropicModel(client, model, max_tokens=max_tokens)
