"""The conversations this process stored last, kept in memory by chat and version, so the next reply in a
chat reads only the row's version from the database, not its conversation.

A long chat is stored at the advisor's context budget (hundreds of KB of JSON): reading, decoding,
validating and measuring it again at every reply was a fifth of a reply's CPU, and most of what the
database sent. The stored version decides (`store.chat.get_chat(held_version=…)`): a reply saved by
another worker or host bumps it, and the chat is then read in full, so a held copy is never served stale.
A copy is held at most `IDLE_SECONDS` after its last use (swept every `SWEEP_SECONDS`, chats or not), and
within `BUDGET_CHARS` of JSON per process (oldest use first out); a deleted chat is no longer found in the
database, so its copy is never used again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from agent import Conversation

BUDGET_CHARS = 8_000_000  # ~38 chats at a 60 000-token budget (~2.2× that in memory), more short ones
IDLE_SECONDS = 600.0
SWEEP_SECONDS = 60.0


@dataclass
class Held:
    user_id: str
    version: int
    conversation: Conversation
    chars: int
    used_at: float


class HeldChats:
    def __init__(
        self,
        budget_chars: int = BUDGET_CHARS,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget_chars, self.idle_seconds, self.clock = budget_chars, idle_seconds, clock
        self._held: OrderedDict[str, Held] = OrderedDict()
        self._chars = 0

    def get(self, chat_id: str, user_id: str) -> Held | None:
        """The copy of this person's chat, when one is held and was used within `idle_seconds`."""
        self.expire()
        held = self._held.get(chat_id)
        if held is None or held.user_id != user_id:
            return None
        self._held.move_to_end(chat_id)
        held.used_at = self.clock()
        return held

    def hold(self, chat_id: str, user_id: str, version: int, conversation: Conversation) -> None:
        """Keep `conversation` as version `version` of the chat. The caller does not change it afterwards:
        a reply works on `conversation.carried()`."""
        self.drop(chat_id)
        chars = conversation.json_chars
        if chars > self.budget_chars:
            return
        self._held[chat_id] = Held(user_id, version, conversation, chars, self.clock())
        self._chars += chars
        while self._chars > self.budget_chars:
            self._forget(next(iter(self._held)))

    def drop(self, chat_id: str) -> None:
        if chat_id in self._held:
            self._forget(chat_id)

    @property
    def chars(self) -> int:
        return self._chars

    def __len__(self) -> int:
        return len(self._held)

    def expire(self) -> None:
        """Drop the copies not used within `idle_seconds` (also run every `SWEEP_SECONDS` by the chat
        service, so a worker that gets no more chats lets them go too)."""
        cutoff = self.clock() - self.idle_seconds
        while self._held:
            oldest = next(iter(self._held))
            if self._held[oldest].used_at > cutoff:
                return
            self._forget(oldest)

    def _forget(self, chat_id: str) -> None:
        self._chars -= self._held.pop(chat_id).chars
