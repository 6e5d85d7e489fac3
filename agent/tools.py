"""`ToolBox`: the advisor's view of an MCP server. It lists the tools (never importing them), calls them
on the shopper's behalf, and turns each result into what the model reads and what the person sees."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import anyio
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ListToolsResult, TextContent
from pydantic import ValidationError

from agent.model import ToolCall, ToolSpec
from agent.policy import Policy, load_policy, untrusted

log = logging.getLogger("shine.advisor")

MAX_RESULT_CHARS = 12_000
ATTACHMENT_ID = re.compile(r"^(upl|att)_[A-Za-z0-9]{6,40}$")
_ERROR_PREFIX = re.compile(r"^Error executing tool \w+:\s*")

Status = Literal["ok", "tool_error", "refused", "failure"]
MetaFactory = Callable[[], Mapping[str, Any] | None]
AttachmentResolver = Callable[[str], Awaitable[str | None]]
ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]


class ToolClient(Protocol):
    """What the advisor needs of an MCP client (`mcp.Client` in-process, over HTTP or over stdio)."""

    async def list_tools(self, *, cursor: str | None = None) -> ListToolsResult: ...

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        read_timeout_seconds: float | None = None,
        progress_callback: Any = None,
        *,
        meta: Any = None,
    ) -> CallToolResult: ...


@dataclass
class ToolOutcome:
    """One tool call's result. `status`: ok; tool_error (the tool refused this call: the model may fix its
    arguments and retry); refused (a rule of the loop said no); failure (the tool or its connection broke:
    not worth retrying in this reply)."""

    call: ToolCall
    status: Status
    structured: Any
    for_model: str
    message: str
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _clip(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n[… {len(text) - MAX_RESULT_CHARS} more characters cut]"


def _text_of(result: CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} omitted]")
    return "\n".join(parts)


class ToolBox:
    def __init__(
        self,
        client: ToolClient,
        *,
        meta: MetaFactory | None = None,
        attachments: AttachmentResolver | None = None,
        policy: Policy | None = None,
        timeout: float = 120.0,
        specs: list[ToolSpec] | None = None,
    ) -> None:
        """`specs`: the tools as an earlier ToolBox on the same server and policy listed them (`specs()`),
        so a new reply does not list them again (the tools are fixed when the server is built)."""
        self.client = client
        self.policy = policy or load_policy()
        self._meta = meta or (lambda: None)
        self._attachments = attachments
        self._timeout = timeout
        self._specs: list[ToolSpec] | None = specs
        self._broken: set[str] = set()

    async def specs(self) -> list[ToolSpec]:
        """The tools the advisor may use, as listed by the server right now (cached for this ToolBox)."""
        if self._specs is None:
            listed: list[ToolSpec] = []
            cursor: str | None = None
            while True:
                page = (
                    await self.client.list_tools(cursor=cursor) if cursor else await self.client.list_tools()
                )
                for tool in page.tools:
                    if not self.policy.visible(tool.name):
                        continue
                    read_only = bool(tool.annotations and tool.annotations.read_only_hint)
                    listed.append(
                        ToolSpec(
                            name=tool.name,
                            description=(tool.description or "").strip(),
                            input_schema=tool.input_schema,
                            read_only=read_only,
                            output_schema=tool.output_schema,
                        )
                    )
                cursor = page.next_cursor
                if not cursor:
                    break
            self._specs = listed
        return self._specs

    async def spec(self, name: str) -> ToolSpec | None:
        return next((s for s in await self.specs() if s.name == name), None)

    async def has(self, name: str) -> bool:
        return await self.spec(name) is not None

    async def _resolve_attachments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Swap an attached photo's id for its bytes (a data URL) at call time, so the conversation and
        the model only ever hold the short id."""
        if self._attachments is None:
            return arguments
        resolved = dict(arguments)
        for key, value in arguments.items():
            if isinstance(value, str) and ATTACHMENT_ID.match(value):
                data_url = await self._attachments(value)
                if data_url is not None:
                    resolved[key] = data_url
        return resolved

    async def call(self, call: ToolCall, progress: ProgressSink | None = None) -> ToolOutcome:
        started = time.perf_counter()
        outcome = await self._call(call, progress)
        outcome.duration_ms = int((time.perf_counter() - started) * 1000)
        return outcome

    async def _call(self, call: ToolCall, progress: ProgressSink | None) -> ToolOutcome:
        spec = await self.spec(call.name)
        if spec is None:
            names = ", ".join(s.name for s in await self.specs())
            message = f"there is no tool named {call.name!r}; the tools are: {names}"
            return ToolOutcome(call, "tool_error", None, message, message)
        if call.name in self._broken:
            message = f"{call.name} failed earlier in this reply; it is not retried until the next message"
            return ToolOutcome(call, "failure", None, message, message)
        try:
            arguments = await self._resolve_attachments(call.input)
            with anyio.fail_after(self._timeout):
                result = await self.client.call_tool(
                    call.name,
                    arguments,
                    read_timeout_seconds=self._timeout,
                    progress_callback=progress,
                    meta=dict(self._meta() or {}) or None,
                )
        except TimeoutError:
            self._broken.add(call.name)
            message = f"{call.name} did not answer within {self._timeout:.0f} s"
            return ToolOutcome(call, "failure", None, message, message)
        except (
            MCPError,
            ValidationError,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            OSError,
        ) as exc:
            self._broken.add(call.name)
            log.warning("tool %s failed: %s", call.name, type(exc).__name__)
            message = f"{call.name} is unavailable right now ({type(exc).__name__})"
            return ToolOutcome(call, "failure", None, message, message)

        if result.is_error:
            message = _ERROR_PREFIX.sub("", _text_of(result)).strip() or f"{call.name} failed"
            return ToolOutcome(call, "tool_error", None, _clip(message), message)
        structured = result.structured_content
        if structured is not None:
            body = json.dumps(structured, ensure_ascii=False, separators=(",", ":"), default=str)
        else:
            body = _text_of(result)
        body = _clip(body)
        if call.name in self.policy.web_tools:
            body = untrusted(call.name, body)
        return ToolOutcome(call, "ok", structured, body, "")
