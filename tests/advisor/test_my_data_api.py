"""`/api/my-data` and `/api/account/close` on the real app: a widget shopper downloads and erases their data,
or closes their account, without the advisor (which never gets these tools) and without another site."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from shine_mcp.config import Settings
from tests.advisor.web import post_chat, shine_web

SHOP = "https://shop.example"


@pytest.fixture
def data_dir(settings: Settings, tmp_path: Path) -> Path:
    return tmp_path


def dev_sign_in(client: httpx.Client, email: str) -> None:
    page = client.get("/auth/dev")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    signed = client.post("/auth/dev", data={"csrf": csrf.group(1), "email": email, "next": "/auth/me"})
    assert signed.status_code in (200, 303), signed.text
    assert client.get("/auth/me").json()["signed_in"] is True


def test_a_guest_downloads_then_erases_their_data(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as guest:
        post_chat(guest, {"message": "find a moisturiser for dry skin"})
        download = guest.get("/api/my-data")
        assert download.status_code == 200
        assert download.headers["content-disposition"] == 'attachment; filename="shine-my-data.json"'
        assert download.headers["cache-control"] == "no-store"
        exported = json.loads(download.text)
        assert "moisturiser for dry skin" in json.dumps(exported["chats"])

        unconfirmed = guest.post("/api/my-data/delete", json={})
        assert unconfirmed.status_code == 400 and unconfirmed.json()["error"] == "not_confirmed"
        as_form = guest.post("/api/my-data/delete", data={"confirm": "true"})
        assert as_form.status_code == 415
        assert guest.get("/api/chat").json()["messages"]  # nothing lost by the refusals

        deleted = guest.post("/api/my-data/delete", json={"confirm": True})
        assert deleted.status_code == 200 and deleted.json()["deleted"]["chats"] >= 1
        assert "Orders" in " ".join(deleted.json()["kept"])
        assert guest.get("/api/chat").json()["messages"] == []
        after = guest.get("/api/my-data")  # the guest session itself stays: only close ends it
        assert after.status_code == 200 and json.loads(after.text)["chats"] == []


def test_a_browser_shine_does_not_know_is_told_so_and_nothing_is_created(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as stranger:
        download = stranger.get("/api/my-data")
        deleted = stranger.post("/api/my-data/delete", json={"confirm": True})
        closed = stranger.post("/api/account/close", json={"confirm": True})
        assert {download.status_code, deleted.status_code, closed.status_code} == {404}
        assert download.json()["error"] == "unknown_visitor"
        assert not stranger.cookies  # no guest session was started by asking


def test_another_site_may_not_export_or_erase(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as guest:
        post_chat(guest, {"message": "hello"})
        evil = {"Origin": "https://evil.example"}
        assert guest.get("/api/my-data", headers=evil).status_code == 403
        assert guest.post("/api/my-data/delete", json={"confirm": True}, headers=evil).status_code == 403
        assert guest.options("/api/my-data/delete", headers=evil).status_code == 403
        assert guest.get("/api/chat").json()["messages"]


def test_an_allowed_shop_uses_the_chat_token_header(data_dir: Path) -> None:
    with shine_web(data_dir, allowed_origins=[SHOP]) as (url, _):
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": SHOP}) as first:
            _, events = post_chat(first, {"message": "hello"})
            token = events[0].data["chat_token"]
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": SHOP, "X-Shine-Chat": token}) as shop:
            download = shop.get("/api/my-data")
            assert download.status_code == 200
            assert download.headers["access-control-allow-origin"] == SHOP
            assert shop.post("/api/my-data/delete", json={"confirm": True}).status_code == 200


def test_a_signed_in_shopper_closes_their_account_from_the_widget(data_dir: Path) -> None:
    with shine_web(data_dir) as (url, _), httpx.Client(base_url=url, timeout=30) as person:
        dev_sign_in(person, "zoe@example.com")
        post_chat(person, {"message": "find a cleanser"})
        unconfirmed = person.post("/api/account/close", json={"confirm": "yes"})
        assert unconfirmed.status_code == 400 and person.get("/auth/me").json()["signed_in"] is True

        closed = person.post("/api/account/close", json={"confirm": True})
        body = closed.json()
        assert closed.status_code == 200 and body["deleted"]["account"] == 1
        assert body["deleted"]["web_sessions_ended"] >= 1 and "signed out everywhere" in body["message"]
        assert any("shine_session=" in c and "Max-Age=0" in c for c in closed.headers.get_list("set-cookie"))

        person.cookies.clear()
        dev_sign_in(person, "zoe@example.com")  # the same person comes back: a new, empty account
        assert person.get("/api/chat").json()["messages"] == []
