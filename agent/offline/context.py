"""What the conversation so far tells the offline advisor: the turns, the tool calls and their results,
the products last shown (for "the first one"), the latest skin report, cart and order."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from agent.cards import cart_card, products_in
from agent.model import Message
from agent.policy import UNTRUSTED_TAG

_FENCED = re.compile(rf"<{UNTRUSTED_TAG}[^>]*>\n(.*)\n</{UNTRUSTED_TAG}>", re.DOTALL)
_ATTACHED = re.compile(r"\[photo attached: ((?:upl|att)_[A-Za-z0-9]+)(?:, keep the photo)?\]")


@dataclass
class Seen:
    """One tool call of the conversation and its result. The result is parsed when first asked for: a reply
    looks at the last few results, and parsing every one of a long chat's on every reply made the reply's
    cost grow with the chat's length."""

    id: str
    name: str
    input: dict[str, Any]
    ok: bool = False
    content: Any = None  # the tool result as stored in the conversation

    @cached_property
    def _parsed(self) -> tuple[Any, str]:
        return _parse(self.content)

    @property
    def structured(self) -> Any:
        return self._parsed[0]

    @property
    def text(self) -> str:
        return self._parsed[1]


@dataclass
class Turn:
    request: str
    calls: list[Seen] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


@dataclass
class Context:
    turns: list[Turn]

    @property
    def current(self) -> Turn:
        return self.turns[-1]

    @property
    def earlier(self) -> list[Turn]:
        return self.turns[:-1]

    def all_calls(self) -> list[Seen]:
        return [c for t in self.turns for c in t.calls]

    def shown_products(self) -> list[dict[str, Any]]:
        for seen in reversed(self.all_calls()):
            if seen.ok and seen.name != "get_product":
                products = products_in(seen.structured)
                if products:
                    return products
        return []

    def routine_products(self) -> list[str]:
        """The distinct products of the routine shown last, when no product list was shown after it."""
        for seen in reversed(self.all_calls()):
            if not seen.ok or not isinstance(seen.structured, dict):
                continue
            if seen.name != "build_routine":
                if products_in(seen.structured):
                    return []
                continue
            ids: list[str] = []
            for slot in ("am", "pm"):
                for step in seen.structured.get(slot) or []:
                    product = step.get("product") if isinstance(step, dict) else None
                    pid = product.get("id") if isinstance(product, dict) else None
                    if isinstance(pid, str) and pid not in ids:
                        ids.append(pid)
            return ids
        return []

    def routine_cards(self) -> list[dict[str, Any]]:
        """The product cards of the routine shown last (each product once), when no list was shown after it."""
        ids = self.routine_products()
        for seen in reversed(self.all_calls()):
            if seen.ok and seen.name == "build_routine" and isinstance(seen.structured, dict):
                cards = {
                    str(step["product"].get("id")): step["product"]
                    for slot in ("am", "pm")
                    for step in seen.structured.get(slot) or []
                    if isinstance(step, dict) and isinstance(step.get("product"), dict)
                }
                return [cards[i] for i in ids if i in cards]
        return []

    def report_ids(self) -> list[str]:
        found: list[str] = []
        for seen in self.all_calls():
            if not seen.ok or not isinstance(seen.structured, dict):
                continue
            rid = seen.structured.get("report_id") or seen.structured.get("id")
            if isinstance(rid, str) and rid.startswith("rep_") and rid not in found:
                found.append(rid)
        return found

    def order_id(self) -> str | None:
        for seen in reversed(self.all_calls()):
            if seen.ok and isinstance(seen.structured, dict):
                oid = seen.structured.get("order_id") or seen.structured.get("id")
                if isinstance(oid, str) and oid.startswith("ord_"):
                    return oid
        return None

    def cart(self, shows_cart: frozenset[str]) -> dict[str, Any] | None:
        for seen in reversed(self.all_calls()):
            if seen.ok and seen.name in shows_cart:
                return cart_card(seen.structured)
        return None

    def uploads(self) -> list[str]:
        return [u for t in self.turns for u in _ATTACHED.findall(t.request)]

    def cart_shown_last_turn(self, shows_cart: frozenset[str], checkout_tools: frozenset[str]) -> bool:
        """The shopper saw their cart in the previous turn, and no checkout followed."""
        if not self.earlier:
            return False
        previous = self.earlier[-1]
        shown = any(c.ok and c.name in shows_cart for c in previous.calls)
        checked_out = any(c.ok and c.name in checkout_tools for c in previous.calls)
        return shown and not checked_out

    def said_anything(self) -> bool:
        return any(t.said for t in self.turns)


def _blocks(message: Message) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _parse(content: Any) -> tuple[Any, str]:
    if isinstance(content, list):
        content = "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
    text = str(content or "")
    fenced = _FENCED.search(text)
    raw = fenced.group(1) if fenced else text
    try:
        return json.loads(raw), text
    except ValueError:
        return None, text


def read_history(messages: list[Message]) -> Context:
    turns: list[Turn] = []
    pending: dict[str, Seen] = {}
    for message in messages:
        blocks = _blocks(message)
        if message["role"] == "user":
            for block in blocks:
                if block.get("type") == "tool_result":
                    seen = pending.pop(str(block.get("tool_use_id")), None)
                    if seen is not None:
                        seen.ok = not block.get("is_error", False)
                        seen.content = block.get("content")
            texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
            if texts:
                turns.append(Turn(request="\n".join(texts)))
        else:
            if not turns:
                turns.append(Turn(request=""))
            for block in blocks:
                if block.get("type") == "text" and block.get("text", "").strip():
                    turns[-1].said.append(block["text"])
                elif block.get("type") == "tool_use":
                    seen = Seen(str(block.get("id")), str(block.get("name")), dict(block.get("input") or {}))
                    turns[-1].calls.append(seen)
                    pending[seen.id] = seen
    if not turns:
        turns.append(Turn(request=""))
    return Context(turns)
