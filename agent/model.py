"""The one-method LLM seam: `Model.respond(system, messages, tools)` streams text and tool calls.

The Anthropic model, the offline planner and the tests' scripted models all implement it; the loop
(`agent.loop`) never knows which one it drives. Messages use the Anthropic Messages shape
(`{"role": ..., "content": [blocks]}` with `text`, `tool_use` and `tool_result` blocks) because it is
the richest of the shapes we need and the one the real model speaks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, Any]
StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "pause_turn"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it (from the MCP server's `tools/list`)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False
    output_schema: dict[str, Any] | None = None

    def properties(self) -> dict[str, Any]:
        props = self.input_schema.get("properties")
        return props if isinstance(props, dict) else {}

    def required(self) -> list[str]:
        req = self.input_schema.get("required")
        return [str(r) for r in req] if isinstance(req, list) else []


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def total(self) -> int:
        """Every token the model read or wrote (cached reads included): what the budget counts."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Finish:
    stop_reason: StopReason
    usage: Usage = field(default_factory=Usage)


ModelEvent = TextChunk | ToolCall | Finish


class ModelError(Exception):
    """The model could not answer. `message` is safe to show a shopper (no keys, no internals)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Model(Protocol):
    @property
    def kind(self) -> Literal["anthropic", "offline", "scripted"]: ...

    @property
    def name(self) -> str: ...

    def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        """Stream one assistant message: text chunks and complete tool calls, then exactly one Finish."""
        ...
