"""Shine's MCP Apps cards in Chromium, the way an Apps host shows them: the `ui://` page read from the
server, in a sandboxed iframe under the Content-Security-Policy its `_meta.ui.csp` asks for, given a real
tool result over the Apps postMessage protocol. Buttons in a card call the real server back through the
host (`tools/call`) and open the payment page through the host (`ui/open-link`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from mcp import Client

from shine_mcp.config import Settings
from shine_mcp.resources.apps import uri
from shine_mcp.server import build_server
from tests.e2e.browser import axe_violations, new_context, serious, shot
from tests.models.conftest import HOPPER

pytestmark = pytest.mark.slow
HOST = "https://host.test/"
CARD = "https://card.test/card.html"

# A host's side of the protocol, in the smallest page that speaks it: answers `ui/initialize`, sends the
# tool result once the card says it is initialized, relays `tools/call` to the server (window.shineCall,
# which the test binds to an in-process client) and records `ui/open-link` requests.
_HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test host</title></head>
<body><main><h1>Chat</h1><div id="slot"></div></main><script>
window.links = []; window.calls = [];
const frame = document.createElement("iframe");
const send = (m) => frame.contentWindow.postMessage({ jsonrpc: "2.0", ...m }, "*");
window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow) return;
  const m = event.data;
  if (m.method === "ui/initialize") {
    send({ id: m.id, result: { protocolVersion: "2026-01-26", hostInfo: { name: "test-host", version: "1" },
      hostCapabilities: { openLinks: {}, serverTools: {} }, hostContext: { theme: "light" } } });
  } else if (m.method === "ui/notifications/initialized") {
    send({ method: "ui/notifications/tool-result", params: TOOL_RESULT });
  } else if (m.method === "tools/call") {
    window.calls.push(m.params.name);
    send({ id: m.id, result: JSON.parse(await window.shineCall(m.params.name, JSON.stringify(m.params.arguments))) });
  } else if (m.method === "ui/open-link") {
    window.links.push(m.params.url);
    send({ id: m.id, result: {} });
  }
});
frame.title = "Shine card";
frame.setAttribute("sandbox", "allow-scripts");
frame.style.cssText = "width: 100%; height: 1400px; border: 0";
frame.src = "CARD_URL";
document.getElementById("slot").append(frame);
</script></body></html>"""
_PICTURE = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'


async def _call(settings: Settings, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(name, arguments)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def _card(settings: Settings, kind: str) -> tuple[str, dict[str, Any]]:
    async with Client(build_server(settings)) as client:
        content = (await client.read_resource(uri(kind))).contents[0]
    return content.text, (content.meta or {})["ui"]["csp"]  # type: ignore[union-attr]


def call(settings: Settings, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A real tool call, on its own thread: Playwright's sync API owns this one's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, _call, settings, name, arguments).result()


def csp_header(csp: dict[str, Any]) -> str:
    """The policy a host builds from the resource's `_meta.ui.csp`: inline code, pictures from the listed
    domains, no other network."""
    pictures = " ".join(csp.get("resourceDomains", []))
    return (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        f"img-src data: {pictures}; connect-src 'none'"
    )


@pytest.fixture
def show(browser: object, settings: Settings) -> Iterator[Any]:
    """show(kind, tool result) -> (page, card frame, requests the card made)."""
    context = new_context(browser, "desktop")
    requests: list[str] = []

    def open_card(kind: str, result: dict[str, Any]) -> tuple[Any, Any, list[str]]:
        html, csp = call_card(settings, kind)
        page = context.new_page()
        page.expose_function(
            "shineCall", lambda name, args: json.dumps(call(settings, name, json.loads(args)))
        )
        host = _HOST_PAGE.replace("TOOL_RESULT", json.dumps(result)).replace("CARD_URL", CARD)
        page.route(HOST, lambda route: route.fulfill(body=host, content_type="text/html"))
        page.route(
            CARD,
            lambda route: route.fulfill(
                body=html, content_type="text/html", headers={"Content-Security-Policy": csp_header(csp)}
            ),
        )
        page.route(
            f"{settings.base_url}/images/**",
            lambda route: route.fulfill(body=_PICTURE, content_type="image/svg+xml"),
        )
        page.on("request", lambda request: requests.append(request.url))
        page.goto(HOST)
        frame = page.frame_locator("iframe")
        frame.locator("h1").wait_for(timeout=10_000)
        return page, next(f for f in page.frames if f.url == CARD), requests

    try:
        yield open_card
    finally:
        context.close()


def call_card(settings: Settings, kind: str) -> tuple[str, dict[str, Any]]:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, _card, settings, kind).result()


def only_allowed(requests: list[str], settings: Settings) -> list[str]:
    return [u for u in requests if not u.startswith((HOST, CARD, f"{settings.base_url}/images/"))]


def test_product_card_shows_the_product_and_adds_it_to_the_cart(show: Any, settings: Settings) -> None:
    result = call(settings, "search_products", {"query": "moisturiser", "limit": 2})
    first = result["structuredContent"]["products"][0]
    page, card, requests = show("products", result)
    assert card.get_by_role("heading", name=first["name"]).is_visible()
    assert first["price"]["display"] in card.locator("article").first.inner_text()
    picture = card.get_by_role("img", name=f"{first['brand']} {first['name']}")
    assert picture.get_attribute("src").startswith(f"{settings.base_url}/images/")
    card.wait_for_function("() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)")

    card.get_by_role("button", name="Add to cart").first.click()
    card.get_by_role("status").filter(has_text="Added").first.wait_for(timeout=15_000)
    cart = call(settings, "view_cart", {})["structuredContent"]
    assert [line["product_id"] for line in cart["lines"]] == [first["id"]]
    shot(page, "mcp-app-products")
    assert serious(axe_violations(card)) == []
    assert only_allowed(requests, settings) == []


def test_recommendation_card_shows_each_reason_with_its_evidence(show: Any, settings: Settings) -> None:
    result = call(settings, "recommend_products", {"concerns": ["acne"], "limit": 2})
    pick = result["structuredContent"]["products"][0]
    cited = next(r for r in pick["reasons"] if r["source_url"].startswith("https://"))
    page, card, _ = show("products", result)
    first = card.locator("article").first
    assert cited["text"] in first.inner_text()
    first.get_by_role("button", name=cited["source"]).click()
    page.wait_for_function("() => window.links.length === 1")
    assert page.evaluate("() => window.links") == [cited["source_url"]]
    assert serious(axe_violations(card)) == []


def test_routine_card_shows_morning_and_evening_steps_and_the_total(show: Any, settings: Settings) -> None:
    result = call(settings, "build_routine", {"concerns": ["acne"]})
    routine = result["structuredContent"]
    page, card, _ = show("routine", result)
    assert card.get_by_role("heading", name="Morning").is_visible()
    assert card.get_by_role("heading", name="Evening").is_visible()
    text = card.locator("main").inner_text()
    for step in routine["am"] + routine["pm"]:
        assert step["product"]["name"] in text
    assert f"Total: {routine['total']['display']}" in text
    shot(page, "mcp-app-routine")
    assert serious(axe_violations(card)) == []


def test_cart_card_checks_out_through_the_hosts_open_link(show: Any, settings: Settings) -> None:
    product = call(settings, "search_products", {"query": "sunscreen", "limit": 1})["structuredContent"]
    added = call(settings, "add_to_cart", {"product_id": product["products"][0]["id"], "quantity": 2})
    page, card, _ = show("cart", added)
    line = added["structuredContent"]["lines"][0]
    row = card.get_by_role("row").filter(has_text=line["name"])
    assert line["line_total"]["display"] in row.inner_text()
    assert serious(axe_violations(card)) == []

    card.get_by_role("button", name="Checkout").click()
    page.wait_for_function("() => window.links.length === 1", timeout=15_000)
    assert page.evaluate("() => window.calls") == ["checkout"]
    order = call(settings, "list_orders", {})["structuredContent"]
    link = page.evaluate("() => window.links[0]")
    assert link.startswith(settings.base_url) and order["orders"]
    card.get_by_role("status").filter(has_text="payment page is open").wait_for()


def test_skin_report_card_shows_metrics_with_confidence_and_what_was_withheld(
    show: Any, settings: Settings
) -> None:
    photo = base64.b64encode(HOPPER.read_bytes()).decode()
    result = call(settings, "analyze_skin", {"image": photo})
    report = result["structuredContent"]
    page, card, requests = show("skin-report", result)
    redness = next(m for m in report["metrics"] if m["name"] == "redness")
    row = card.get_by_role("row").filter(has_text="Redness")
    assert f"{redness['value']:g}" in row.inner_text()  # as JavaScript writes a number: 5.0 is "5"
    assert f"{round(redness['confidence'] * 100)} %" in row.inner_text()
    ita = next(m for m in report["metrics"] if m["name"] == "ita")
    assert f"{ita['details']['ita_low']} to {ita['details']['ita_high']}" in card.locator("main").inner_text()
    refusal = next(w for w in report["withheld"] if w["name"] == "diagnosis")
    assert refusal["reason"] in card.locator("main").inner_text()
    shot(page, "mcp-app-skin-report")
    assert serious(axe_violations(card)) == []
    assert only_allowed(requests, settings) == []
