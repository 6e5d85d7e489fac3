"""Firecrawl failing in every way the fake can: each gives a retry, the breaker or a clear error, never the key."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable

import anyio
import pytest
from mcp.types import CallToolResult

from shine_mcp.config import Settings
from tests.browse.conftest import firecrawl_processes, shine
from tests.fakes import firecrawl_api
from tests.fakes.firecrawl_api import FakeFirecrawl

SEARCH = {"query": "glass skin", "limit": 5}


def _text(result: CallToolResult) -> str:
    return json.dumps(result.model_dump(mode="json"))


def _no_key(result: CallToolResult, caplog: pytest.LogCaptureFixture) -> None:
    assert firecrawl_api.API_KEY not in _text(result)
    assert firecrawl_api.API_KEY not in caplog.text


async def test_a_server_error_is_retried_and_the_user_gets_images(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_firecrawl.fail_next("/v2/search", "500")
    async with shine(browse_settings()) as app:
        result = await app.client.call_tool("browse_web_images", SEARCH)
    assert not result.is_error and result.structured_content and result.structured_content["images"]
    assert [r.status for r in fake_firecrawl.calls("/v2/search")] == [500, 200]
    _no_key(result, caplog)


async def test_a_rate_limit_is_retried_after_a_pause(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.fail_next("/v2/search", "429")
    async with shine(browse_settings()) as app:
        result = await app.client.call_tool("browse_web_images", SEARCH)
    assert not result.is_error
    assert [r.status for r in fake_firecrawl.calls("/v2/search")] == [429, 200]


async def test_a_rate_limit_that_lasts_says_so(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.fail_next("/v2/search", "429", times=3)
    async with shine(browse_settings(firecrawl_breaker_failures=5)) as app:
        result = await app.client.call_tool("browse_web_images", SEARCH)
    assert result.is_error and "rate-limiting Shine (429)" in _text(result)
    assert len(fake_firecrawl.calls("/v2/search")) == 3  # the call and two retries


async def test_out_of_credits_is_a_clear_error_and_not_retried(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl, caplog: pytest.LogCaptureFixture
) -> None:
    fake_firecrawl.fail_next("/v2/search", "402")
    fake_firecrawl.fail_next("/v2/scrape", "402")
    async with shine(browse_settings()) as app:
        images = await app.client.call_tool("browse_web_images", SEARCH)
        page = await app.client.call_tool(
            "read_product_page", {"url": "https://glowlab.example/products/niacinamide-10-serum"}
        )
    for result in (images, page):
        assert result.is_error and "Firecrawl is out of credits (402)" in _text(result)
        _no_key(result, caplog)
    assert len(fake_firecrawl.calls("/v2/search")) == 1


async def test_a_malformed_answer_is_a_clear_error(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.fail_next("/v2/search", "malformed")
    fake_firecrawl.fail_next("/v2/scrape", "malformed")
    async with shine(browse_settings()) as app:
        images = await app.client.call_tool("browse_web_images", SEARCH)
        page = await app.client.call_tool(
            "read_product_page", {"url": "https://glowlab.example/products/niacinamide-10-serum"}
        )
        after = await app.client.call_tool("browse_web_images", SEARCH)
    for result in (images, page):
        assert result.is_error and "answer Shine could not read" in _text(result)
    assert not after.is_error  # nothing bad was cached


async def test_a_stalled_firecrawl_times_out_then_the_breaker_answers_at_once(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.stall_seconds = 10
    fake_firecrawl.fail_next("/v2/search", "stall", times=2)
    settings = browse_settings(
        firecrawl_timeout=1.0, firecrawl_breaker_failures=2, firecrawl_breaker_seconds=60
    )
    async with shine(settings) as app:
        with anyio.fail_after(5):
            first = await app.client.call_tool("browse_web_images", {"query": "glass skin"})
            second = await app.client.call_tool("browse_web_images", {"query": "dewy skin"})
        assert "did not answer within 1 s" in _text(first) and "did not answer within 1 s" in _text(second)
        with anyio.fail_after(0.5):  # the breaker is open: no call, no wait
            third = await app.client.call_tool("browse_web_images", {"query": "matte skin"})
    assert third.is_error and "Firecrawl is not answering; try again in" in _text(third)
    assert len(fake_firecrawl.calls("/v2/search")) == 2


async def test_the_breaker_lets_one_probe_through_and_closes_when_it_succeeds(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.fail_next("/v2/search", "500", times=2)
    settings = browse_settings(
        firecrawl_retries=0, firecrawl_breaker_failures=2, firecrawl_breaker_seconds=0.2
    )
    async with shine(settings) as app:
        for query in ("glass skin", "dewy skin"):
            assert (await app.client.call_tool("browse_web_images", {"query": query})).is_error
        refused = await app.client.call_tool("browse_web_images", {"query": "matte skin"})
        await anyio.sleep(0.25)  # the breaker's own timer, not a wait for work
        probe = await app.client.call_tool("browse_web_images", {"query": "matte skin"})
    assert "not answering" in _text(refused)
    assert not probe.is_error
    assert len(fake_firecrawl.calls("/v2/search")) == 3


async def test_a_killed_firecrawl_process_is_restarted_and_the_call_retried(
    browse_settings: Callable[..., Settings], fake_firecrawl: FakeFirecrawl
) -> None:
    fake_firecrawl.stall_seconds = 10
    fake_firecrawl.fail_next("/v2/search", "stall")
    async with shine(browse_settings()) as app:

        async def kill_when_stalled() -> None:
            await anyio.to_thread.run_sync(fake_firecrawl.stalled.wait, 10)
            (pid,) = firecrawl_processes()
            os.kill(pid, signal.SIGKILL)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_when_stalled)
                result = await app.client.call_tool("browse_web_images", SEARCH)
        assert not result.is_error, _text(result)
        assert len(firecrawl_processes()) == 1  # a new one
    assert [r.status for r in fake_firecrawl.calls("/v2/search")][-1] == 200
    assert firecrawl_processes() == []  # and it stopped with Shine


async def test_a_wrong_key_is_refused_clearly_without_echoing_it(
    browse_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "fc-wrong0key0that0must0not0leak"
    async with shine(browse_settings(firecrawl_api_key=wrong)) as app:
        result = await app.client.call_tool("browse_web_images", SEARCH)
    assert result.is_error and "check FIRECRAWL_API_KEY" in _text(result)
    assert wrong not in _text(result) and wrong not in caplog.text
