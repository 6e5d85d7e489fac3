"""The web chat's advisor reaches the tools through one in-process MCP session for the whole app, not one per
reply: a new session listed the ~145 KB tool list twice and compiled each called tool's output schema again,
~40 ms of CPU per reply (more than the reply's own tool calls)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from shine_mcp.config import Settings
from tests.advisor.web import post_chat
from tests.conftest import make_settings
from tests.support.asgi import serve_asgi
from tests.support.postgres import free_port
from web_shell.app import create_app

MESSAGES = ["find a moisturiser for dry skin under $30", "show me serums", "a fragrance-free sunscreen"]


class MethodCounter:
    """Server middleware: counts the MCP methods the server is asked for."""

    def __init__(self) -> None:
        self.methods: Counter[str] = Counter()

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        self.methods[ctx.method] += 1
        return await call_next(ctx)


def test_chat_replies_share_one_tool_session_and_one_tool_listing(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    app = create_app(make_settings(tmp_path, host="127.0.0.1", port=port))
    counter = MethodCounter()
    with serve_asgi(app, port) as url:
        app.state.mcp_server.middleware.append(counter)
        replies = []
        for message in MESSAGES:  # three shoppers, each with a reply that searches the catalog
            with httpx.Client(base_url=url, timeout=30) as client:
                response, events = post_chat(client, {"message": message})
            assert response.status_code == 200
            replies.append(events)

    for events in replies:
        names = [e.event for e in events]
        assert "products" in names and names[-1] == "done" and "error" not in names
    assert counter.methods["tools/call"] >= len(MESSAGES)
    # Listed at most once (when the session opened, possibly before the counter was added), never per reply.
    assert counter.methods["tools/list"] <= 1
    assert counter.methods["initialize"] <= 1
