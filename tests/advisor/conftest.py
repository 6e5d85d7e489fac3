"""Fixtures for the advisor tests: the Anthropic fake on a loopback port with the real SDK pointed at it,
the real Shine server in process, the toy shop of stand-in tools, and an event recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anthropic
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from agent import Advisor, Conversation, Limits, ToolBox
from agent.anthropic_model import AnthropicModel
from agent.events import Card, Done, Event, Notice, TextDelta, ToolFinished, ToolStarted
from agent.model import Model
from tests.advisor.toy_shop import ToyShop, build_toy_shop
from tests.fakes.anthropic_api import API_KEY, FakeAnthropic, running
from tests.support.postgres import free_port


@dataclass
class Recorder:
    """Collects what a reply streamed, for assertions about what a person would see."""

    events: list[Event] = field(default_factory=list)

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    def cards(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if isinstance(e, Card) and e.kind == kind]

    def started(self) -> list[str]:
        return [e.name for e in self.events if isinstance(e, ToolStarted)]

    def finished(self) -> list[ToolFinished]:
        return [e for e in self.events if isinstance(e, ToolFinished)]

    def notices(self) -> list[str]:
        return [e.code for e in self.events if isinstance(e, Notice)]

    @property
    def done(self) -> Done:
        last = self.events[-1]
        assert isinstance(last, Done), f"the reply did not end with Done: {last!r}"
        return last


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with running(FakeAnthropic(), free_port()) as fake:
        yield fake


@pytest.fixture
def claude(fake_anthropic: FakeAnthropic) -> AnthropicModel:
    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=fake_anthropic.url, max_retries=0)
    return AnthropicModel(client, "claude-test-model", max_tokens=1024)


@pytest.fixture
def toy() -> ToyShop:
    return ToyShop()


@pytest.fixture
def toy_server(toy: ToyShop) -> MCPServer:
    return build_toy_shop(toy)


@dataclass
class Chat:
    """One conversation with an advisor, reply after reply, and the MCP client it uses."""

    advisor: Advisor
    client: Client
    conversation: Conversation = field(default_factory=Conversation)

    async def say(self, text: str, **options: Any) -> Recorder:
        recorder = Recorder()
        await self.advisor.reply(self.conversation, text, recorder, **options)
        return recorder


@asynccontextmanager
async def chatting(
    model: Model, server: MCPServer, *, limits: Limits | None = None, **toolbox: Any
) -> AsyncIterator[Chat]:
    """An advisor over an in-process client of `server`, opened and closed in the test's own task (the
    in-process client holds a task group, which must be exited by the task that entered it)."""
    async with Client(server) as client:
        yield Chat(Advisor(model, ToolBox(client, **toolbox), limits=limits), client)
