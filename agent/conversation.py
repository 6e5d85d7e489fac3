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
    # Each message's JSON length by its content's identity (`fitted`), with the content (kept alive, so the
    # identity is not reused) and the role.
    _measured: dict[int, tuple[object, str, int]] = PrivateAttr(default_factory=dict)

    def fitted(self, budget_tokens: int) -> list[Message]:
        """`fit(self.messages, budget_tokens)`, measuring only the messages added or changed since the last
        call: a reply fits its conversation before each step and again to store it, and a stored chat sits
        at the budget (hundreds of KB), so measuring it all each time was a large share of a reply's CPU."""
        return fit(self.messages, budget_tokens, sizes=self._sizes())

    def _sizes(self) -> list[int]:
        # `append` gives a message it grows a new content list, `fit` copies a message it trims, and nothing
        # edits a content list in place: the same list is the same message.
        known: dict[int, tuple[object, str, int]] = self._measured
        sizes, measured = [], {}
        for message in self.messages:
            content, role = message.get("content"), message.get("role", "")
            entry = known.get(id(content))
            if entry is None or entry[0] is not content or entry[1] != role:
                entry = (content, role, _chars(message))
            measured[id(content)] = entry
            sizes.append(entry[2])
        self._measured = measured
        return sizes

    @property
    def json_chars(self) -> int:
        """How long the stored messages are as JSON (measured once each): what keeping this in memory costs."""
        return _list_chars(self._sizes())

    def kept(self, budget_tokens: int) -> Conversation:
        """The conversation to store after a reply: its messages fitted into `budget_tokens`, its state as
        it is now, and their sizes already measured, so the reply after it (`carried`) measures only what
        it adds."""
        stored = Conversation.model_construct(
            messages=self.fitted(budget_tokens), state=self.state.model_copy(deep=True)
        )
        stored._measured = self._measured
        stored._sizes()
        return stored

    def carried(self) -> Conversation:
        """A copy to reply in that leaves this one as it was stored: the message list and each message are
        copied (a reply appends, and replaces a last message's content), the content lists and their
        measured sizes are shared."""
        copy = Conversation.model_construct(
            messages=[dict(m) for m in self.messages], state=self.state.model_copy(deep=True)
        )
        copy._measured = self._measured
        return copy

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
    """`messages` within `budget_tokens`, as a new list when anything had to go (a message whose results
    were emptied is a copy; the others are the same objects): first older tool results are emptied (oldest
    first), then the oldest whole turns dropped. The current turn is always kept whole, and every tool_use
    keeps its tool_result, so the API never sees a dangling call.

    Each message is measured once (a stored chat sits at the budget, so every reply trims it): measuring
    the whole conversation again for each turn it might drop made a reply's CPU grow with the chat's length
    squared. `sizes`: each message's `_chars`, when the caller knows them (`Conversation.fitted`)."""
    sizes = [_chars(m) for m in messages] if sizes is None else list(sizes)
    if _tokens(_list_chars(sizes)) <= budget_tokens:
        return messages
    # A message is copied only when one of its results is emptied: the rest stay the caller's own objects,
    # so their measured sizes hold for the next call (`Conversation.fitted`).
    fitted = list(messages)
    turn_starts = [i for i, m in enumerate(fitted) if _starts_turn(m)]
    current = turn_starts[-1] if turn_starts else 0

    size = _tokens(_list_chars(sizes))
    for index, message in enumerate(fitted[:current]):
        blocks: list[dict[str, Any]] | None = None
        for position, block in enumerate(_blocks(message)):
            if block.get("type") != "tool_result":
                continue
            before = len(json.dumps(block.get("content"), ensure_ascii=False))
            if before > len(TRIMMED) + 2:  # emptying a result shorter than the note would only grow it
                if blocks is None:
                    blocks = _blocks(message)
                    fitted[index] = {**message, "content": blocks}
                blocks[position] = {**block, "content": TRIMMED}
                size -= int((before - len(TRIMMED)) / CHARS_PER_TOKEN)
                if size <= budget_tokens:
                    return fitted
        if blocks is not None:
            sizes[index] = _chars(fitted[index])

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
    kept = [b for b in _blocks(first) if b.get("type") != "tool_result"]
    return [{**first, "content": kept}, *messages[1:]]
