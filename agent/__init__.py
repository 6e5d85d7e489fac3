"""Shine's advisor: an agent loop that is an MCP client of the Shine server plus a model (Anthropic or the
offline planner). It lists the server's tools and never imports `shine_mcp.tools`."""

from agent.conversation import Conversation, ConversationState
from agent.events import (
    Card,
    Done,
    ErrorEvent,
    Event,
    Notice,
    TextDelta,
    ToolFinished,
    ToolProgress,
    ToolStarted,
)
from agent.loop import Advisor, Attachment, Limits, ReplyResult
from agent.model import Finish, Model, ModelError, TextChunk, ToolCall, ToolSpec, Usage
from agent.offline import OfflinePlanner
from agent.tools import ToolBox

__all__ = [
    "Advisor",
    "Attachment",
    "Card",
    "Conversation",
    "ConversationState",
    "Done",
    "ErrorEvent",
    "Event",
    "Finish",
    "Limits",
    "Model",
    "ModelError",
    "Notice",
    "OfflinePlanner",
    "ReplyResult",
    "TextChunk",
    "TextDelta",
    "ToolBox",
    "ToolCall",
    "ToolFinished",
    "ToolProgress",
    "ToolSpec",
    "ToolStarted",
    "Usage",
    "build_model",
]


def build_model(
    api_key: str | None, model: str, *, base_url: str | None = None, max_tokens: int = 2048
) -> Model:
    """The Anthropic model when a key is configured, otherwise the offline advisor."""
    if not api_key:
        return OfflinePlanner()
    from agent.anthropic_model import build_anthropic_model

    return build_anthropic_model(api_key, model, base_url=base_url, max_tokens=max_tokens)
