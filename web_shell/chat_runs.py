"""Advisor replies as background runs whose events are kept in order, so the Server-Sent Events stream of a
reply can be read from the start or resumed after a dropped connection (`Last-Event-ID`); and
`ChatService`, which starts them: per reply, an advisor acting as the person, on the app's one in-process
MCP client.

A run belongs to the process that started it: it lives in memory while it runs and for `KEEP_FINISHED`
after, which covers a phone switching networks; after that, the saved conversation is the record.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup
from mcp import Client
from mcp.server.mcpserver import MCPServer

from agent import Advisor, Attachment, Conversation, Limits, ToolBox, build_model
from agent.events import Done, ErrorEvent, Event, event_data, event_name
from agent.model import Model, ToolSpec
from shine_mcp.auth.authority import Authority
from shine_mcp.clock import utcnow
from shine_mcp.services import Services
from shine_mcp.store import chat as store
from web_shell.held_chats import SWEEP_SECONDS, HeldChats

if TYPE_CHECKING:
    from web_shell.auth import WebIdentity

log = logging.getLogger("shine.chat")

KEEP_FINISHED = 600.0  # seconds a finished run stays resumable
KEEP_ALIVE = 15.0  # an SSE comment this often while a tool works, so proxies keep the stream open


def sse_frame(seq: int, name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"id: {seq}\nevent: {name}\ndata: {payload}\n\n".encode()


@dataclass
class Run:
    id: str
    chat_id: str
    user_id: str
    frames: list[bytes] = field(default_factory=list)
    finished_at: float | None = None
    _changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if self.finished:
            return
        self.frames.append(sse_frame(len(self.frames) + 1, name, data))
        self._wake()

    def finish(self) -> None:
        if self.finished_at is None:
            self.finished_at = time.monotonic()
            self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    async def stream(self, after: int = 0) -> AsyncIterator[bytes]:
        """Every frame after sequence number `after`, then the live ones, until the run ends."""
        sent = max(0, after)
        while True:
            while sent < len(self.frames):
                sent += 1
                yield self.frames[sent - 1]
            if self.finished:
                return
            changed = self._changed
            with anyio.move_on_after(KEEP_ALIVE) as waiting:
                await changed.wait()
            if waiting.cancelled_caught:
                yield b": keep-alive\n\n"


class Runs:
    """The runs of this process: by id, and the one running per chat (a chat answers one message at a time)."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._active: dict[str, str] = {}

    def active_in(self, chat_id: str) -> Run | None:
        run_id = self._active.get(chat_id)
        run = self._runs.get(run_id) if run_id else None
        return run if run is not None and not run.finished else None

    def start(self, run: Run) -> None:
        self._evict()
        self._runs[run.id] = run
        self._active[run.chat_id] = run.id

    def end(self, run: Run) -> None:
        run.finish()
        if self._active.get(run.chat_id) == run.id:
            del self._active[run.chat_id]

    def get(self, run_id: str, user_id: str) -> Run | None:
        """A run of this person (another person's run does not exist for them)."""
        run = self._runs.get(run_id)
        return run if run is not None and run.user_id == user_id else None

    def _evict(self) -> None:
        now = time.monotonic()
        for run_id, run in list(self._runs.items()):
            if run.finished_at is not None and now - run.finished_at > KEEP_FINISHED:
                del self._runs[run_id]


class ChatService:
    def __init__(
        self, services: Services, authority: Authority, server: MCPServer, model: Model | None = None
    ) -> None:
        settings = services.settings
        self.services, self.authority, self.server, self.settings = services, authority, server, settings
        self.model = model or build_model(
            settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None,
            settings.model,
            base_url=settings.anthropic_base_url,
        )
        self.limits = Limits(
            max_steps=settings.advisor_max_steps,
            token_budget=settings.advisor_token_budget,
            context_tokens=settings.advisor_context_tokens,
        )
        self.runs = Runs()
        self.held = HeldChats()
        self._group: TaskGroup | None = None
        self._client: Client | None = None  # the advisors' in-process MCP session (`running`)
        self._specs: list[ToolSpec] | None = None  # the tools as the first reply's ToolBox listed them
        self._capabilities: dict[str, bool] | None = None

    async def capabilities(self) -> dict[str, bool]:
        """What the widget may offer, from the tools this server registers (read once: tools are fixed at build)."""
        if self._capabilities is None:
            names = {tool.name for tool in await self.server.list_tools()}
            self._capabilities = {
                "cart": "add_to_cart" in names,
                "checkout": "checkout" in names,
                "photos": "analyze_skin" in names,
            }
        return self._capabilities

    @property
    def advisor_name(self) -> str:
        return "offline advisor" if self.model.kind == "offline" else f"Claude ({self.model.name})"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Runs outlive the request that started them (a reply keeps going if the connection drops).

        Every run's advisor calls the tools through one in-process MCP session opened here, and the tool
        list is read once: a session per reply listed the whole list (~145 KB) and compiled each called
        tool's output schema again, ~40 ms of CPU a reply, more than its tool calls. Who is asking goes
        with each call (`_meta`, `WebIdentity.meta`), never with the session."""
        async with Client(self.server) as client, anyio.create_task_group() as group:
            self._group, self._client = group, client
            group.start_soon(self._let_idle_chats_go)
            try:
                yield
            finally:
                self._group = self._client = None
                group.cancel_scope.cancel()

    async def _let_idle_chats_go(self) -> None:
        while True:
            await anyio.sleep(SWEEP_SECONDS)
            self.held.expire()

    async def open_chat(self, user_id: str, chat_id: str) -> tuple[store.ChatSession, Conversation] | None:
        """The person's chat and the conversation to reply in (None when it is not theirs or is gone): this
        process's copy while the stored version is still the one it holds (`HeldChats`), else read in full."""
        held = self.held.get(chat_id, user_id)
        chat = await store.get_chat(
            self.services.db, user_id, chat_id, held_version=held.version if held else None
        )
        if held is not None and chat is not None and chat.version == held.version:
            return chat, held.conversation.carried()
        self.held.drop(chat_id)
        return (chat, conversation_of(chat)) if chat is not None else None

    async def start(
        self,
        identity: WebIdentity,
        chat: store.ChatSession,
        conversation: Conversation,
        text: str,
        attachments: list[Attachment],
        confirm_checkout: bool,
        token: str,
    ) -> Run:
        """Start answering `text` in `chat`, whose stored conversation is `conversation` (`open_chat`);
        `token` is the signed chat token the `session` event hands out."""
        if self._group is None:
            raise RuntimeError("the chat service is not running (the app's lifespan did not start it)")
        run = Run(id="run_" + secrets.token_hex(10), chat_id=chat.id, user_id=identity.user_id)
        self.runs.start(run)
        run.publish(
            "session",
            {
                "chat_id": chat.id,
                "chat_token": token,
                "run_id": run.id,
                "advisor": self.advisor_name,
                "offline": self.model.kind == "offline",
                "guest": identity.guest,
            },
        )
        self._group.start_soon(
            self._execute, run, identity, chat, conversation, text, attachments, confirm_checkout
        )
        return run

    async def _execute(
        self,
        run: Run,
        identity: WebIdentity,
        chat: store.ChatSession,
        conversation: Conversation,
        text: str,
        attachments: list[Attachment],
        confirm_checkout: bool,
    ) -> None:
        held: list[Done] = []

        async def emit(event: Event) -> None:
            if isinstance(event, Done):
                held.append(event)  # sent after the conversation is saved, so `done` means "safe to reload"
            else:
                run.publish(event_name(event), event_data(event))

        try:
            client = self._client
            if client is None:
                raise RuntimeError("the chat service is not running (the app's lifespan did not start it)")
            # Upload ids go to the tools as they are: analyze_skin reads the caller's chat uploads itself.
            tools = ToolBox(client, meta=lambda: identity.meta(self.settings), specs=self._specs)
            advisor = Advisor(self.model, tools, limits=self.limits, instructions=client.instructions)
            await advisor.reply(
                conversation, text, emit, attachments=attachments, confirm_checkout=confirm_checkout
            )
            if self._specs is None:
                self._specs = await tools.specs()  # listed during the reply: kept, not asked again
            stored = conversation.kept(self.limits.context_tokens)
            saved = await self._save(run, identity, chat, stored)
            if saved:
                self.held.hold(chat.id, identity.user_id, chat.version + 1, stored)
            else:
                self.held.drop(chat.id)
            if saved is None:
                run.publish(
                    "error",
                    {
                        "code": "not_saved",
                        "message": "We could not save this reply, so it will be missing if you reload. "
                        "Please send your message again in a moment.",
                    },
                )
            elif not saved:
                run.publish(
                    "error",
                    {
                        "code": "conflict",
                        "message": "This chat changed in another tab; reload to see the latest.",
                    },
                )
            for done in held:
                run.publish(event_name(done), event_data(done))
        except Exception:
            log.exception("chat run %s failed", run.id)
            failure = ErrorEvent("internal_error", "Something went wrong on our side; please try again.")
            run.publish(event_name(failure), event_data(failure))
            run.publish(
                "done", {"stop_reason": "error", "steps": 0, "advisor": self.advisor_name, "usage": {}}
            )
        finally:
            self.runs.end(run)

    async def _save(
        self, run: Run, identity: WebIdentity, chat: store.ChatSession, conversation: Conversation
    ) -> bool | None:
        """Store the reply the shopper just read: True when stored, False when another tab saved first,
        None when it could not be stored (the database stayed busy past its retries, or failed)."""
        try:
            return await store.save_chat(
                self.services.db,
                identity.user_id,
                chat.id,
                conversation.as_json(),
                version=chat.version,
                advisor=self.advisor_name,
                now=utcnow(),
            )
        except Exception:
            log.exception("chat run %s: the reply was shown but could not be saved", run.id)
            return None


def conversation_of(chat: store.ChatSession) -> Conversation:
    try:
        return Conversation.model_validate(chat.conversation or {})
    except ValueError:
        log.warning("chat %s had an unreadable conversation; starting it afresh", chat.id)
        return Conversation()
