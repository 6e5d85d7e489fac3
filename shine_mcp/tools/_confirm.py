"""The `confirm` argument of tools that delete, cancel or loosen a safety limit: without it they change
nothing and answer what they would do, so any client (elicitation or not) can ask the person first."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

Confirm = Annotated[
    bool,
    Field(
        description="Leave it out first: nothing changes and the answer says exactly what would happen. "
        "Pass true only after the person read that and said yes."
    ),
]


def needs_confirmation(tool: str, what: str) -> ToolError:
    """The answer to a call without `confirm=true`: `what` would happen (a sentence the person can read)."""
    return ToolError(
        f"Nothing was changed yet. {what} Tell the person exactly this and ask whether to go ahead; "
        f"only after they say yes, call {tool} again with the same arguments and confirm=true."
    )
