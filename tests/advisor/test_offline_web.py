"""The offline advisor over the real web tools: Shine's browse tools, the real `firecrawl-mcp` and the local
Firecrawl fake, or no Firecrawl at all. What the person sees comes from what the tools returned."""

from __future__ import annotations

import base64
from collections.abc import Callable

from agent import OfflinePlanner
from shine_mcp.config import Settings
from shine_mcp.server import build_server
from shine_mcp.services import Services
from tests.advisor.conftest import chatting
from tests.advisor.test_offline import calls
from tests.browse.conftest import browse_settings, fake_firecrawl  # noqa: F401  (fixtures)
from tests.models.conftest import ASTRONAUT


async def test_images_come_from_firecrawl_with_their_pages_and_sites(
    browse_settings: Callable[..., Settings],  # noqa: F811
) -> None:
    settings = browse_settings()
    server = build_server(settings, Services(settings))
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("show me pictures of dewy glass skin")
        (name, arguments), *_ = calls(chat)
        direct = (await chat.client.call_tool(name, arguments)).structured_content

    assert name == "browse_web_images" and "dewy glass skin" in arguments["query"]
    assert direct is not None and direct["images"]
    cards = seen.cards("images")[0]["images"]
    assert [c["image_url"] for c in cards] == [i["image_url"] for i in direct["images"]][: len(cards)]
    assert all(c["source"] for c in cards)
    assert "from the web" in seen.text


async def test_looks_like_mine_search_from_the_photo_just_analysed(
    browse_settings: Callable[..., Settings],  # noqa: F811
) -> None:
    settings = browse_settings()
    server = build_server(settings, Services(settings))
    photo = "data:image/png;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()

    async def attachment(upload_id: str) -> str | None:
        return photo

    async with chatting(OfflinePlanner(), server, attachments=attachment) as chat:
        await chat.say("analyse my skin", attachments=["att_selfie01"])
        seen = await chat.say("show me looks similar to my skin")

    report_ids = [a["report_id"] for n, a in calls(chat) if n == "find_similar_looks"]
    analysed = [n for n, _ in calls(chat) if n == "analyze_skin"]
    assert analysed and len(report_ids) == 1 and report_ids[0].startswith("rep_")
    images = seen.cards("images")[0]["images"]
    assert images and all(i["page_url"] and i["source"] for i in images)


async def test_without_firecrawl_the_advisor_says_browsing_is_not_configured(settings: Settings) -> None:
    async with chatting(OfflinePlanner(), build_server(settings, Services(settings))) as chat:
        seen = await chat.say("show me pictures of glass skin")

    assert [n for n, _ in calls(chat)] == ["browse_web_images"]
    assert "not configured" in seen.text and "FIRECRAWL_API_KEY" in seen.text
