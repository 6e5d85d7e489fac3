"""A conversation: its messages (Anthropic shape) and the facts the loop's rules need between turns,
plus trimming a long one to fit the model's context, oldest tool results first."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

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
    # Each message's content as it was measured, and its JSON length (`fitted`).
    _measured: list[tuple[object, int]] = PrivateAttr(default_factory=list)

    def fitted(self, budget_tokens: int) -> list[Message]:
        """`fit(self.messages, budget_tokens)`, measuring only the messages added or changed since the last
        call: a reply fits its conversation before each step and again to store it, and a stored chat sits
        at the budget (hundreds of KB), so measuring it all each time was a large share of a reply's CPU."""
        known, sizes = self._measured, []
        for index, message in enumerate(self.messages):
            content = message.get("content")
            # `append` gives a message it grows a new content list, and nothing edits one in place.
            if index < len(known) and known[index][0] is content:
                sizes.append(known[index][1])
            else:
                sizes.append(_chars(message))
        self._measured = [(m.get("content"), size) for m, size in zip(self.messages, sizes, strict=True)]
        return fit(self.messages, budget_tokens, sizes=sizes)

    def as_json(self) -> dict[str, Any]:
        """The conversation to store: its messages are JSON values already (read from JSON, or blocks of
        text, tool calls' JSON input and tool results' text), so only the state is converted; a full
        `model_dump(mode="json")` walked every block of a long chat again."""
        return {"messages": self.messages, "state": self.state.model_dump(mode="json")}

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
    return _tokens(_list_chars([_chars(m) for m in messages]))


def _chars(message: Message) -> int:
    return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")))


def _list_chars(sizes: list[int]) -> int:
    """The length of the JSON list of items this long: theirs, a comma between each two, the brackets."""
    return sum(sizes) + len(sizes) + 1 if sizes else 2


def _tokens(chars: int) -> int:
    return int(chars / CHARS_PER_TOKEN)


def _starts_turn(message: Message) -> bool:
    return message["role"] == "user" and any(b.get("type") == "text" for b in _blocks(message))


def fit(messages: list[Message], budget_tokens: int, *, sizes: list[int] | None = None) -> list[Message]:
    """A copy of `messages` within `budget_tokens`: first older tool results are emptied (oldest first),
    then the oldest whole turns dropped. The current turn is always kept whole, and every tool_use keeps
    its tool_result, so the API never sees a dangling call.

    Each message is measured once (a stored chat sits at the budget, so every reply trims it): measuring
    the whole conversation again for each turn it might drop made a reply's CPU grow with the chat's length
    squared. `sizes`: each message's `_chars`, when the caller knows them (`Conversation.fitted`)."""
    sizes = [_chars(m) for m in messages] if sizes is None else list(sizes)
    if _tokens(_list_chars(sizes)) <= budget_tokens:
        return messages
    fitted = [{**m, "content": [dict(b) for b in _blocks(m)]} for m in messages]
    sizes = [
        size if isinstance(m.get("content"), list) else _chars(f)
        for m, f, size in zip(messages, fitted, sizes, strict=True)
    ]
    turn_starts = [i for i, m in enumerate(fitted) if _starts_turn(m)]
    current = turn_starts[-1] if turn_starts else 0

    size = _tokens(_list_chars(sizes))
    for index, message in enumerate(fitted[:current]):
        emptied = False
        for block in message["content"]:
            if block.get("type") != "tool_result":
                continue
            before = len(json.dumps(block.get("content"), ensure_ascii=False))
            if before > len(TRIMMED) + 2:  # emptying a result shorter than the note would only grow it
                block["content"] = TRIMMED
                emptied = True
                size -= int((before - len(TRIMMED)) / CHARS_PER_TOKEN)
                if size <= budget_tokens:
                    return fitted
        if emptied:
            sizes[index] = _chars(message)

    # What is left from each turn on, in characters: the kept messages and a comma after each but the last.
    after = 0
    left = [0] * (len(fitted) + 1)
    for index in range(len(fitted) - 1, -1, -1):
        after += sizes[index]
        left[index] = after + (len(fitted) - index) + 1
    for start in turn_starts[1:]:
        if _tokens(left[start]) <= budget_tokens or start == current:
            return _without_orphans(fitted[start:])
    return _without_orphans(fitted[current:])


def _without_orphans(messages: list[Message]) -> list[Message]:
    """A turn that began after a stopped reply opens with tool results whose calls were just dropped."""
    first = messages[0]
    kept = [b for b in first["content"] if b.get("type") != "tool_result"]
    return [{**first, "content": kept}, *messages[1:]]
