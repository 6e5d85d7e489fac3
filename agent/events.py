"""What a reply streams to a person: text, tool progress, cards, notices, errors, and how it ended.

The web shell sends each as one Server-Sent Event (`event: <type>`, `data: <json>`); the terminal prints
them. Cards carry plain JSON (prices as integer minor units plus a display string).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CardKind = Literal[
    "products",
    "product",
    "routine",
    "report",
    "cart",
    "checkout",
    "images",
    "order",
    "orders",
    "subscriptions",
]
StopKind = Literal[
    "end_turn",
    "max_tokens",
    "step_limit",
    "token_budget",
    "medical_referral",
    "model_error",
    "refusal",
    "checkout",
]


@dataclass(frozen=True)
class TextDelta:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ToolStarted:
    id: str
    name: str
    summary: str
    type: Literal["tool_started"] = "tool_started"


@dataclass(frozen=True)
class ToolProgress:
    id: str
    name: str
    progress: float
    total: float | None
    message: str | None
    type: Literal["tool_progress"] = "tool_progress"


@dataclass(frozen=True)
class ToolFinished:
    id: str
    name: str
    ok: bool
    summary: str
    duration_ms: int
    type: Literal["tool_finished"] = "tool_finished"


@dataclass(frozen=True)
class Card:
    kind: CardKind
    data: dict[str, Any]
    type: Literal["card"] = "card"


@dataclass(frozen=True)
class Notice:
    code: str
    message: str
    type: Literal["notice"] = "notice"


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    message: str
    type: Literal["error"] = "error"


@dataclass(frozen=True)
class Done:
    stop_reason: StopKind
    steps: int
    advisor: str
    usage: dict[str, int] = field(default_factory=dict)
    type: Literal["done"] = "done"


Event = TextDelta | ToolStarted | ToolProgress | ToolFinished | Card | Notice | ErrorEvent | Done
Emit = Callable[[Event], Awaitable[None]]


def event_name(event: Event) -> str:
    """The SSE event name: cards go out under their kind (`products`, `cart`, …) so clients can listen."""
    return event.kind if isinstance(event, Card) else event.type


def event_data(event: Event) -> dict[str, Any]:
    if isinstance(event, Card):
        return event.data
    data = asdict(event)
    data.pop("type", None)
    return data
