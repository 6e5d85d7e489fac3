"""`/api/chat` and `/api/uploads` on the real app served by uvicorn: Server-Sent Events, guest chat
sessions, resuming a stream, one reply at a time, CORS, photo uploads, and the demo page and widget."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import httpx
import pytest
from PIL import Image
from sqlmodel import select

from shine_mcp.config import Settings
from shine_mcp.store import chat as chat_store
from shine_mcp.store.db import open_database
from tests.advisor.web import GatedModel, post_chat, read_events, shine_web
from tests.fakes.anthropic_api import API_KEY, FakeAnthropic, Turn, running, text, tool_use
from tests.models.conftest import ASTRONAUT
from tests.support.postgres import free_port

SHOP = "https://shop.example"


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    return tmp_path  # the `settings` fixture has put a copy of the demo-catalog database here


def jpeg_with_gps() -> bytes:
    image = Image.open(ASTRONAUT).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92, exif=exif)
    return out.getvalue()


def test_a_message_streams_the_reply_as_server_sent_events(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        response, events = post_chat(client, {"message": "find a moisturiser for dry skin under $30"})

    assert response.headers["content-type"].startswith("text/event-stream")
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    session = events[0]
    assert session.event == "session" and session.data["offline"] is True and session.data["guest"] is True
    assert response.headers["x-shine-chat"] == session.data["chat_token"]
    names = [e.event for e in events]
    assert names.index("tool_started") < names.index("tool_finished") < names.index("products")
    assert names[-1] == "done" and "text" in names
    assert all(
        p["price"]["amount_minor"] <= 3000
        for p in next(e for e in events if e.event == "products").data["products"]
    )
    assert {"shine_chat", "shine_session"} <= set(response.cookies.keys())


def test_the_chat_continues_where_it_left_off_and_survives_a_reload(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        _, first = post_chat(client, {"message": "show me serums"})
        shown = next(e for e in first if e.event == "products").data["products"][0]
        _, second = post_chat(client, {"message": "what's in the first one?"})
        history = client.get("/api/chat").json()

    assert first[0].data["chat_id"] == second[0].data["chat_id"] == history["chat_id"]
    assert next(e for e in second if e.event == "product").data["id"] == shown["id"]
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert history["messages"][2]["text"] == "what's in the first one?"
    assert history["capabilities"]["photos"] is True


def test_a_shop_on_another_origin_keeps_its_chat_with_the_token_header_alone(data_dir: Path) -> None:
    with shine_web(data_dir, allowed_origins=[SHOP]) as (url, _):
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": SHOP}) as first_visit:
            response, events = post_chat(first_visit, {"message": "hello"})
            token = events[0].data["chat_token"]
        with httpx.Client(
            base_url=url, timeout=30, headers={"Origin": SHOP, "X-Shine-Chat": token}
        ) as no_cookies:
            _, again = post_chat(no_cookies, {"message": "help"})
            history = no_cookies.get("/api/chat").json()

    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert again[0].data["chat_id"] == events[0].data["chat_id"]
    assert len(history["messages"]) == 4


def test_an_altered_chat_token_starts_a_new_chat(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as first:
            _, events = post_chat(first, {"message": "hello"})
        chat_id = events[0].data["chat_id"]
        forged = chat_id + "." + "0" * 32
        with httpx.Client(base_url=url, timeout=30, headers={"X-Shine-Chat": forged}) as intruder:
            _, theirs = post_chat(intruder, {"message": "hello"})

    assert theirs[0].data["chat_id"] != chat_id


def test_other_sites_may_not_drive_the_chat(data_dir: Path) -> None:
    with (
        shine_web(data_dir, allowed_origins=[SHOP]) as (url, _),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        allowed = client.options(
            "/api/chat", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
        )
        refused = client.options("/api/chat", headers={"Origin": "https://evil.example"})
        posted = client.post("/api/chat", json={"message": "hi"}, headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == SHOP
    assert "x-shine-chat" in allowed.headers["access-control-allow-headers"]
    assert refused.status_code == 403 and posted.status_code == 403
    assert posted.json()["error"] == "origin_not_allowed"


def test_a_dropped_stream_resumes_after_the_last_event_seen(data_dir: Path) -> None:
    model = GatedModel()
    with shine_web(data_dir, model=model) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", "/api/chat", json={"message": "hello"}) as response:
            seen = read_events(response.iter_lines(), stop_after=2)  # session, "First part."
        run_id = response.headers["x-shine-run"]
        assert model.started.wait(10)
        busy = client.post("/api/chat", json={"message": "are you there?"})
        model.gate.set()
        with client.stream(
            "GET", f"/api/chat/runs/{run_id}/events", headers={"Last-Event-ID": str(seen[-1].id)}
        ) as resumed:
            rest = read_events(resumed.iter_lines())
        stranger = httpx.get(f"{url}/api/chat/runs/{run_id}/events")

    assert [e.event for e in seen] == ["session", "text"]
    assert busy.status_code == 409 and busy.headers["x-shine-run"] == run_id
    assert rest[0].id == seen[-1].id + 1
    assert [e.data.get("text") for e in rest if e.event == "text"] == ["Second part."]
    assert rest[-1].event == "done"
    assert stranger.status_code == 404  # another browser cannot read this person's reply


def test_empty_and_oversized_messages_are_refused(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        empty = client.post("/api/chat", json={"message": "   "})
        huge = client.post("/api/chat", json={"message": "x" * 5000})
        not_json = client.post("/api/chat", content=b"hello", headers={"content-type": "text/plain"})

    assert empty.status_code == 400 and huge.status_code == 413 and not_json.status_code == 400


def test_a_photo_upload_is_validated_and_stored_without_its_metadata(data_dir: Path) -> None:
    with (
        shine_web(data_dir, upload_ttl_minutes=30) as (url, settings),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        response = client.post("/api/uploads", files={"photo": ("me.jpg", jpeg_with_gps(), "image/jpeg")})
        body = response.json()
        session_cookie = client.cookies.get("shine_session")

        async def stored() -> chat_store.ChatUpload | None:
            db = await open_database(settings)
            async with db.session() as session:
                row = (await session.execute(select(chat_store.ChatUpload))).scalars().first()
            await db.close()
            return row

        row = anyio.run(stored)

    assert response.status_code == 201 and session_cookie
    assert body["upload_id"].startswith("upl_") and (body["width"], body["height"]) == (512, 512)
    assert "gps" in body["metadata_removed"] and body["kept"] is False
    assert row is not None and row.id == body["upload_id"] and row.expires_at is not None
    assert not Image.open(io.BytesIO(row.data)).getexif()  # no EXIF, no GPS at rest


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"GIF89a" + b"\x00" * 200, "GIF files are not supported"),
        (b"hello, I am not a photo", "not a photo format Shine reads"),
    ],
)
def test_an_upload_that_is_not_a_usable_photo_is_refused_with_the_intake_message(
    data_dir: Path, payload: bytes, message: str
) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/api/uploads", files={"photo": ("x.jpg", payload, "image/jpeg")})

    assert response.status_code == 400 and message in response.json()["message"]


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(data_dir: Path) -> None:
    with (
        shine_web(data_dir, max_photo_bytes=200_000) as (url, _),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        response = client.post(
            "/api/uploads", files={"photo": ("big.jpg", b"\xff\xd8\xff" + b"\0" * 400_000, "image/jpeg")}
        )

    assert response.status_code == 413


def test_a_chat_with_an_uploaded_selfie_analyses_it_as_the_guest_who_sent_it(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            upload = client.post(
                "/api/uploads", files={"photo": ("me.jpg", jpeg_with_gps(), "image/jpeg")}
            ).json()
            _, events = post_chat(
                client, {"message": "analyse my photo please", "uploads": [upload["upload_id"]]}
            )
        with httpx.Client(base_url=url, timeout=30) as stranger:
            refused = stranger.post(
                "/api/chat", json={"message": "analyse", "uploads": [upload["upload_id"]]}
            )

    started = [e.data["name"] for e in events if e.event == "tool_started"]
    assert started[0] == "analyze_skin"
    report = next(e for e in events if e.event == "report").data
    assert report["id"].startswith("rep_") and report["metrics"]
    assert refused.status_code == 404 and refused.json()["error"] == "upload_not_found"


def test_deleting_an_upload(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        upload = client.post(
            "/api/uploads", files={"photo": ("me.jpg", jpeg_with_gps(), "image/jpeg")}
        ).json()
        gone = client.delete(f"/api/uploads/{upload['upload_id']}")
        again = client.delete(f"/api/uploads/{upload['upload_id']}")

    assert gone.status_code == 204 and again.status_code == 404


def test_the_demo_shop_page_embeds_the_widget_and_shows_the_catalog(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/")
        widget = client.get("/widget.js")
        cached = client.get("/widget.js", headers={"If-None-Match": widget.headers["etag"]})
        top = client.post("/mcp", json={}).status_code  # the MCP mount still answers behind the pages

    assert page.status_code == 200 and '<script src="/widget.js" data-shine-url=""' in page.text
    assert (
        page.text.count('class="tile"') >= 1
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    assert widget.headers["content-type"].startswith("text/javascript") and "attachShadow" in widget.text
    assert cached.status_code == 304
    assert top != 404


def test_with_an_anthropic_key_the_web_chat_streams_the_models_reply(data_dir: Path) -> None:
    fake = FakeAnthropic(
        script=[
            Turn(
                [
                    text("Looking."),
                    tool_use("search_products", {"query": "", "category": "sunscreen", "limit": 2}),
                ]
            ),
            Turn([text("Two sunscreens for you.")]),
        ]
    )
    with (
        running(fake, free_port()),
        shine_web(data_dir, anthropic_api_key=API_KEY, anthropic_base_url=fake.url) as (url, _),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        _, events = post_chat(client, {"message": "a sunscreen please"})

    assert events[0].data["offline"] is False and "claude" in events[0].data["advisor"].lower()
    assert (
        "".join(e.data["text"] for e in events if e.event == "text") == "Looking.\n\nTwo sunscreens for you."
    )
    assert len(next(e for e in events if e.event == "products").data["products"]) == 2
    assert fake.requests[0]["messages"][0]["content"][0]["text"] == "a sunscreen please"


def test_a_new_chat_starts_empty_and_the_old_one_is_left_alone(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        _, first = post_chat(client, {"message": "hello"})
        reset = client.post("/api/chat/reset").json()
        fresh = client.get("/api/chat").json()
        _, later = post_chat(client, {"message": "help"})

    assert reset["chat_id"] != first[0].data["chat_id"]
    assert fresh["chat_id"] == reset["chat_id"] and fresh["messages"] == []
    assert later[0].data["chat_id"] == reset["chat_id"]


def test_the_checkout_button_says_plainly_when_this_shop_cannot_take_payment_yet(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        capabilities = client.get("/api/chat").json()["capabilities"]
        _, events = post_chat(client, {"confirm_checkout": True})

    said = "".join(e.data["text"] for e in events if e.event == "text")
    if capabilities["checkout"]:
        assert "confirm" in said  # nothing was shown yet, so the cart is shown and a yes asked for
    else:
        assert "Checkout is not available in this shop yet" in said
    assert events[-1].event == "done"
