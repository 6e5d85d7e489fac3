"""A conversation: its messages (Anthropic shape) and the facts the loop's rules need between turns,
plus trimming a long one to fit the model's context, oldest tool results first."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from agent.model import Message

CHARS_PER_TOKEN = 3.5  # a conservative estimate for English and JSON; real counts come back in `usage`
TRIMMED = "[older tool result removed to fit the conversation into the model's context]"


class ConversationState(BaseModel):
    turn: int = 0
    confirmed_turn: int | None = Field(
        default=None, description="The turn in which the shopper explicitly confirmed checking out."
    )
    cart_shown_turn: int | None = Field(
        default=None, description="The turn in which the cart was last shown."
    )
    cart_changed_turn: int | None = None
    cart_fingerprint: str | None = Field(
        default=None, description="Items and quantities of the cart last shown."
    )
    uploads: list[str] = Field(
        default_factory=list, description="Photo upload ids attached in this conversation."
    )


class Conversation(BaseModel):
    messages: list[dict[str, Any]] = Field(default_factory=list)
    state: ConversationState = Field(default_factory=ConversationState)

    def append(self, role: str, blocks: list[dict[str, Any]]) -> None:
        """Add blocks, merging into the last message when it has the same role (the API wants turns to alternate)."""
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"] = [*_blocks(self.messages[-1]), *blocks]
        else:
            self.messages.append({"role": role, "content": list(blocks)})

    def transcript(self) -> list[dict[str, str]]:
        """What a person saw: their messages and the advisor's text, for a page reload."""
        shown: list[dict[str, str]] = []
        for message in self.messages:
            text = "".join(b.get("text", "") for b in _blocks(message) if b.get("type") == "text")
            if text.strip():
                shown.append({"role": message["role"], "text": text})
        return shown


def _blocks(message: Message) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def estimate_tokens(messages: list[Message]) -> int:
    return int(len(json.dumps(messages, ensure_ascii=False, separators=(",", ":"))) / CHARS_PER_TOKEN)


def _starts_turn(message: Message) -> bool:
    return message["role"] == "user" and any(b.get("type") == "text" for b in _blocks(message))


def fit(messages: list[Message], budget_tokens: int) -> list[Message]:
    """A copy of `messages` within `budget_tokens`: first older tool results are emptied (oldest first),
    then the oldest whole turns dropped. The current turn is always kept whole, and every tool_use keeps
    its tool_result, so the API never sees a dangling call."""
    if estimate_tokens(messages) <= budget_tokens:
        return messages
    fitted = [{**m, "content": [dict(b) for b in _blocks(m)]} for m in messages]
    turn_starts = [i for i, m in enumerate(fitted) if _starts_turn(m)]
    current = turn_starts[-1] if turn_starts else 0

    size = estimate_tokens(fitted)
    for message in fitted[:current]:
        for block in message["content"]:
            if block.get("type") != "tool_result":
                continue
            before = len(json.dumps(block.get("content"), ensure_ascii=False))
            if before > len(TRIMMED) + 2:  # emptying a result shorter than the note would only grow it
                block["content"] = TRIMMED
                size -= int((before - len(TRIMMED)) / CHARS_PER_TOKEN)
                if size <= budget_tokens:
                    return fitted

    for start in turn_starts[1:]:
        if estimate_tokens(fitted[start:]) <= budget_tokens or start == current:
            return _without_orphans(fitted[start:])
    return _without_orphans(fitted[current:])


def _without_orphans(messages: list[Message]) -> list[Message]:
    """A turn that began after a stopped reply opens with tool results whose calls were just dropped."""
    first = messages[0]
    kept = [b for b in first["content"] if b.get("type") != "tool_result"]
    return [{**first, "content": kept}, *messages[1:]]
