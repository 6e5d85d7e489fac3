"""Operating Shine: every response and log line carries a request id, logs can be JSON lines, and
`/metrics` serves Prometheus counters per route and per tool, to loopback or to a scraper with the token."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from shine_mcp.logs import RequestIdFilter, log_handler, request_id
from tests.advisor.web import shine_web
from tests.support.postgres import free_port
from tests.test_transports import _wait_healthy as wait_healthy

SHINE = str(Path(sys.executable).parent / "shine")
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
RELAYED = {"X-Forwarded-For": "203.0.113.9"}  # what a reverse proxy adds: the caller is not this machine


@pytest.fixture
def data_dir(tmp_path: Path, demo_database_template: Path) -> Path:
    shutil.copy(demo_database_template, tmp_path / "shine.db")
    return tmp_path


@pytest.fixture
def shine(data_dir: Path) -> Iterator[str]:
    with shine_web(data_dir, metrics_token="scrape-secret-123") as (url, _settings):
        yield url


def samples(exposition: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """`name`'s samples in a Prometheus text exposition, keyed by their labels."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[frozenset(sample.labels.items())] = sample.value
    return found


async def search_over_mcp(base: str, headers: dict[str, str]) -> None:
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
        ):
            result = await client.call_tool("search_products", {"query": "sunscreen", "limit": 2})
            assert not result.is_error


def test_a_response_without_a_request_id_gets_a_new_one(shine: str) -> None:
    first, second = httpx.get(f"{shine}/healthz"), httpx.get(f"{shine}/healthz")
    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_the_proxys_request_id_is_echoed_when_well_formed_and_replaced_when_not(shine: str) -> None:
    echoed = httpx.get(f"{shine}/healthz", headers={"X-Request-Id": "edge-7f3a.42:1"})
    assert echoed.headers["x-request-id"] == "edge-7f3a.42:1"
    for bad in ("two words", "x" * 129, "<script>", "line\tbreak"):
        replaced = httpx.get(f"{shine}/healthz", headers={"X-Request-Id": bad})
        assert GENERATED_ID.fullmatch(replaced.headers["x-request-id"]), bad


def test_refusals_before_any_route_carry_a_request_id_too(shine: str) -> None:
    refused = httpx.get(f"{shine}/healthz", headers={"Host": "evil.example"})
    assert refused.status_code == 421
    assert GENERATED_ID.fullmatch(refused.headers["x-request-id"])


async def test_log_lines_written_during_a_tool_call_carry_its_request_id(
    shine: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.DEBUG, logger="shine.metrics"):
        await search_over_mcp(shine, {"X-Request-Id": "trace-tool-call-1"})
    tool_lines = [r for r in caplog.records if r.getMessage().startswith("tool search_products: ok")]
    assert [getattr(r, "request_id", None) for r in tool_lines] == ["trace-tool-call-1"]


def test_json_log_lines_are_one_parseable_object_each_with_the_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("shine.test_json_logs")
    handler = log_handler("json")
    logger.addHandler(handler)
    token = request_id.set("req-json-1")
    try:
        logger.warning('a "quoted" line\nwith a newline')
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
    finally:
        request_id.reset(token)
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["message"], line["request_id"]) for line in lines] == [
        ("WARNING", 'a "quoted" line\nwith a newline', "req-json-1"),
        ("ERROR", "it failed", "req-json-1"),
    ]
    assert "ValueError: boom" in lines[1]["exception"]
    assert lines[0]["logger"] == "shine.test_json_logs" and lines[0]["time"].endswith("+00:00")


def test_metrics_are_refused_to_relayed_callers_without_the_token(shine: str) -> None:
    assert httpx.get(f"{shine}/metrics", headers=RELAYED).status_code == 404
    wrong = {**RELAYED, "Authorization": "Bearer not-the-token"}
    assert httpx.get(f"{shine}/metrics", headers=wrong).status_code == 404


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
def test_metrics_without_a_token_setting_answer_only_loopback(data_dir: Path, token: str | None) -> None:
    with shine_web(data_dir, metrics_token=token) as (url, _settings):
        assert httpx.get(f"{url}/metrics").status_code == 200
        assert httpx.get(f"{url}/metrics", headers=RELAYED).status_code == 404
        for offered in ("Bearer guess", "Bearer", ""):
            headers = {**RELAYED, "Authorization": offered}
            assert httpx.get(f"{url}/metrics", headers=headers).status_code == 404, offered


async def test_metrics_count_tool_calls_routes_by_template_and_webhook_outcomes(shine: str) -> None:
    await search_over_mcp(shine, {})
    async with httpx.AsyncClient(base_url=shine) as http:
        for path in ("/healthz", "/healthz", "/no/such/page/4711"):
            await http.get(path)
        await http.delete("/api/uploads/upl_4711")
        forged = await http.post("/stripe/webhook", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
        assert forged.status_code == 400
        scraped = await http.get("/metrics", headers={**RELAYED, "Authorization": "Bearer scrape-secret-123"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    tools = samples(scraped.text, "shine_tool_calls_total")
    assert tools[frozenset({("tool", "search_products"), ("outcome", "ok")})] == 1
    requests = samples(scraped.text, "shine_http_requests_total")
    assert requests[frozenset({("route", "/healthz"), ("method", "GET"), ("status", "200")})] == 2
    assert any(("route", "/mcp") in labels for labels in requests)
    routes = {dict(labels)["route"] for labels in requests}
    assert not any("4711" in route for route in routes), routes  # raw paths never become labels
    assert any(("route", "/api/uploads/{upload_id}") in labels for labels in requests)
    assert samples(scraped.text, "shine_webhook_events_total") == {frozenset({("outcome", "rejected")}): 1}
    latency = samples(scraped.text, "shine_http_request_duration_seconds_count")
    assert latency[frozenset({("route", "/healthz"), ("method", "GET")})] == 2


@pytest.mark.slow
def test_shine_serve_writes_json_lines_with_request_ids(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHINE_", "DATABASE_URL"))}
    env.update(SHINE_DATA_DIR=str(data_dir), SHINE_LOG_FORMAT="json")
    process = subprocess.Popen(
        [SHINE, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        answered = httpx.get(f"{base}/healthz", headers={"X-Request-Id": "json-serve-1"})
        assert answered.status_code == 200
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert lines, "shine serve wrote no log lines"
    assert any(line["request_id"] == "json-serve-1" and "/healthz" in line["message"] for line in lines), (
        lines
    )


async def test_metrics_count_skin_analyses_by_outcome_and_failed_photo_check(shine: str) -> None:
    import base64

    import matplotlib
    import skimage

    def data_url(path: Path, media: str) -> str:
        return f"data:{media};base64," + base64.b64encode(path.read_bytes()).decode()

    face = data_url(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg", "image/jpeg")
    cat = data_url(Path(skimage.__file__).parent / "data" / "chelsea.png", "image/png")
    with anyio.fail_after(120):
        async with (
            httpx2.AsyncClient(timeout=120) as http,
            Client(streamable_http_client(f"{shine}/mcp", http_client=http)) as client,
        ):
            reported = await client.call_tool("analyze_skin", {"image": face})
            refused = await client.call_tool("analyze_skin", {"image": cat})
    assert not reported.is_error and refused.is_error
    assert reported.structured_content is not None
    failed = [g["name"] for g in reported.structured_content["gates"] if not g["passed"]]

    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"{shine}/metrics")).text
    analyses = samples(scraped, "shine_skin_analyses_total")
    assert analyses.pop(frozenset({("outcome", "reported")})) == 1
    ((labels, count),) = analyses.items()  # the cat: refused with its code (no face found)
    assert count == 1 and dict(labels)["outcome"] != "reported"
    checks = samples(scraped, "shine_skin_failed_photo_checks_total")
    assert checks == {frozenset({("gate", name)}): 1 for name in failed}
