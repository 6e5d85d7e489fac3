"""Erasure works on the person, not on an id: a guest who kept a photo, told Shine about their skin and paid,
then signed in to an account that already had a profile, is erased whole by `delete_my_data` and
`close_my_account`. Each test walks every column of every table and the data folder afterwards."""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from shine_mcp.auth.accounts import merge_guest, merged_ids, upsert_user
from shine_mcp.config import Settings
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.store.carts import Cart, CartItem, read_cart
from shine_mcp.store.chat import create_chat
from shine_mcp.store.clicks import forget_user_clicks, record_click, user_clicks
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.photos import PHOTOS_DIR, PhotoStore
from shine_mcp.store.profiles import export_profile_data, get_profile, rate, record_view, save_profile
from shine_mcp.store.purge import purge_expired
from shine_mcp.store.skin_reports import SkinReportRecord, add_report, get_report, new_report_id
from shine_mcp.store.tables import Click, default_variant_id
from tests.checkout.conftest import CLEANSER, FOAMING, SERUM, Shop, in_own_task, open_shop, shop_settings
from tests.models.conftest import HOPPER
from tests.test_resumable_streams import McpHttp, events

EMAIL = "ana.person@example.com"
NAME = "Ana Person"
# Where each needle may stay after the erasure, by table: what the reply says is kept.
SIGN_IN_TABLES = {
    "users",
    "web_sessions",
    "audit_events",
    "oauth_tokens",
    "oauth_codes",
    "rate_limit_buckets",
}


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    async with in_own_task(open_shop(shop_settings(settings.data_dir))) as opened:
        yield opened


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    opened = await open_database(Settings(data_dir=tmp_path, database_url=url))
    yield opened
    await opened.close()


@dataclass
class Person:
    account_id: str
    guest_id: str
    browser: httpx.AsyncClient  # holds the account's session cookie once signed in
    photo_report: str


async def pay(shop: Shop, user: str) -> str:
    """Check the cart out and press Pay on the simulated checkout page, as the shopper would."""
    checkout = await shop.call("checkout", user=user)
    page = await shop.http.get(checkout["checkout_url"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    paid = await shop.http.post(f"{checkout['checkout_url']}/pay", data={"csrf": csrf.group(1)})
    assert paid.status_code == 303, paid.text
    order = await shop.order(checkout["order"]["order_id"])
    assert order.paid_at is not None
    return order.id


async def dev_sign_in(browser: httpx.AsyncClient, email: str, name: str) -> dict[str, Any]:
    page = await browser.get("/auth/dev")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    form = {"csrf": csrf.group(1), "email": email, "name": name, "next": "/auth/me"}
    signed = await browser.post("/auth/dev", data=form)
    assert signed.status_code in (200, 303), signed.text
    me: dict[str, Any] = (await browser.get("/auth/me")).json()
    assert me["signed_in"] is True
    return me


async def person_with_a_merged_guest(shop: Shop) -> Person:
    """An account with a profile and a paid order; then the same person, as a guest in another browser,
    keeps a photo, sets a profile, rates, pays and fills a cart, and signs in."""
    now = datetime.now(UTC)
    account = await upsert_user(
        shop.services.db,
        VerifiedPerson(email=EMAIL, email_verified=True, name=NAME, google_sub="g-ana-person"),
        now=now,
    )
    await shop.call(
        "update_profile",
        {"skin_type": "dry", "concerns": ["dark_spots"], "avoid_ingredients": ["fragrance"]},
        user=account.id,
    )
    await shop.call("add_to_cart", {"product_id": SERUM, "quantity": 1}, user=account.id)
    await pay(shop, account.id)  # the checkout session now holds the email, name and address
    await shop.call("add_to_cart", {"product_id": FOAMING, "quantity": 1}, user=account.id)

    transport = httpx.ASGITransport(app=shop.app)
    browser = httpx.AsyncClient(transport=transport, base_url=str(shop.http.base_url))
    assert (
        await browser.post("/api/chat", json={"message": "a moisturiser for dry skin"})
    ).status_code == 200
    me = (await browser.get("/auth/me")).json()
    assert me["guest"] is True
    guest_id = me["user"]["id"]
    image = base64.b64encode(HOPPER.read_bytes()).decode()
    report = await shop.call("analyze_skin", {"image": image, "keep_photo": True}, user=guest_id)
    await shop.call(
        "update_profile",
        {"skin_type": "oily", "concerns": ["redness"], "avoid_ingredients": ["lanolin"]},
        user=guest_id,
    )
    await shop.call("rate_product", {"product_id": SERUM, "rating": 5}, user=guest_id)
    await shop.call("add_to_cart", {"product_id": CLEANSER, "quantity": 1}, user=guest_id)
    await pay(shop, guest_id)
    await shop.call("add_to_cart", {"product_id": CLEANSER, "quantity": 2}, user=guest_id)
    assert photo_files(shop.settings.data_dir), "the kept photo is on disk"

    signed_in = await dev_sign_in(browser, EMAIL, NAME)
    assert signed_in["user"]["id"] == account.id
    return Person(account.id, guest_id, browser, report["report_id"])


def photo_files(data_dir: Path) -> list[Path]:
    root = data_dir / PHOTOS_DIR
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def where_found(data_dir: Path, needle: str) -> dict[str, set[str]]:
    """Every table.column of the database whose value holds `needle` (text, JSON or bytes)."""
    found: dict[str, set[str]] = {}
    with sqlite3.connect(data_dir / "shine.db") as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_")
        ]
        for table in tables:
            columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for column, value in zip(columns, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if needle.lower() in text.lower():
                        found.setdefault(table, set()).add(column)
    return found


def files_naming(data_dir: Path, needle: str) -> list[Path]:
    return [p for p in data_dir.rglob("*") if needle in p.name]


async def test_signing_in_moves_everything_a_guest_made_to_the_account(shop: Shop) -> None:
    person = await person_with_a_merged_guest(shop)
    data_dir, db = shop.settings.data_dir, shop.services.db

    # Only the link that lets an erasure of the account reach the guest id too.
    assert where_found(data_dir, person.guest_id) == {"person_aliases": {"alias_id"}}
    assert files_naming(data_dir, person.guest_id) == []
    report = await shop.call("get_skin_report", {"report_id": person.photo_report}, user=person.account_id)
    assert report["photo_kept"] is True
    [photo] = photo_files(data_dir)
    assert photo.parent.name == person.account_id
    profile = await get_profile(db, person.account_id)
    assert profile is not None
    assert profile.skin_type == "dry"  # the account's own answer wins
    assert profile.concerns == ["dark_spots", "redness"]
    assert profile.avoid_ingredients == ["fragrance", "lanolin"]  # a limit told as a guest still holds
    ratings = await shop.call("export_my_data", user=person.account_id)
    assert [(f["product_id"], f["value"]) for f in ratings["feedback"] if f["kind"] == "rating"] == [
        (SERUM, 5)
    ]
    cart = await shop.call("view_cart", user=person.account_id)
    assert sorted((line["product_id"], line["quantity"]) for line in cart["lines"]) == sorted(
        [(CLEANSER, 2), (FOAMING, 1)]
    )
    orders = await shop.call("list_orders", user=person.account_id)
    assert len(orders["orders"]) == 2


async def test_deleting_my_data_after_sign_in_erases_what_the_guest_made_too(shop: Shop) -> None:
    person = await person_with_a_merged_guest(shop)
    data_dir = shop.settings.data_dir

    erased = await person.browser.post("/api/my-data/delete", json={"confirm": True})

    assert erased.status_code == 200, erased.text
    reply = erased.json()
    assert reply["deleted"]["skin_reports"] == 1 and reply["deleted"]["profile"] == 1
    assert reply["deleted"]["orders_unlinked"] == 2
    kept = " ".join(reply["kept"])
    assert "Orders" in kept and "sign-in account (email and name)" in kept and "security log" in kept
    assert photo_files(data_dir) == []
    assert where_found(data_dir, person.guest_id) == {}
    assert files_naming(data_dir, person.guest_id) == []
    assert set(where_found(data_dir, person.account_id)) <= SIGN_IN_TABLES
    assert where_found(data_dir, EMAIL) == {"users": {"email"}}
    assert set(where_found(data_dir, NAME)) <= {"users"}
    # Paid, not yet shipped: the address stays with the order and its delivery, and the reply says so.
    assert "shipping address of an order not yet shipped" in kept
    assert set(where_found(data_dir, "Simulation Street")) == {"orders", "fulfilment_jobs"}


async def test_closing_the_account_after_sign_in_leaves_nothing_of_the_person(shop: Shop) -> None:
    person = await person_with_a_merged_guest(shop)
    data_dir = shop.settings.data_dir

    closed = await person.browser.post("/api/account/close", json={"confirm": True})

    assert closed.status_code == 200, closed.text
    reply = closed.json()
    assert reply["deleted"]["account"] == 1 and reply["deleted"]["skin_reports"] == 1
    kept = " ".join(reply["kept"])
    assert "Orders" in kept and "security log" in kept and "account id" in kept
    assert photo_files(data_dir) == []
    assert where_found(data_dir, person.guest_id) == {}
    assert files_naming(data_dir, person.guest_id) == []
    assert set(where_found(data_dir, person.account_id)) <= {"audit_events"}
    assert where_found(data_dir, EMAIL) == {}
    assert where_found(data_dir, NAME) == {}
    assert "shipping address of an order not yet shipped" in kept
    assert set(where_found(data_dir, "Simulation Street")) == {"orders", "fulfilment_jobs"}


async def test_what_lands_under_a_merged_guest_id_later_is_erased_with_the_person(shop: Shop) -> None:
    person = await person_with_a_merged_guest(shop)
    data_dir, db = shop.settings.data_dir, shop.services.db
    # A request the guest started before signing in finishes after the merge, under the guest id.
    await save_profile(db, person.guest_id, {"avoid_ingredients": ["lanolin"]})
    late = SkinReportRecord(id=new_report_id(), user_id=person.guest_id, analysis={}, model_hashes={})
    late.photo_path = PhotoStore(data_dir).save(person.guest_id, late.id, HOPPER.read_bytes())
    await add_report(db, late)

    erased = await person.browser.post("/api/my-data/delete", json={"confirm": True})

    assert erased.status_code == 200, erased.text
    assert erased.json()["deleted"]["skin_reports"] == 2 and erased.json()["deleted"]["merged_guest_ids"] == 1
    assert photo_files(data_dir) == []
    assert where_found(data_dir, person.guest_id) == {}
    again = await person.browser.post("/api/my-data/delete", json={"confirm": True})
    assert set(again.json()["deleted"].values()) == {0}


async def a_cart(db: Database, user_id: str, items: dict[str, int]) -> str:
    cart_id = f"crt_{secrets.token_hex(10)}"
    async with db.session() as session, session.begin():
        session.add(Cart(id=cart_id, user_id=user_id, currency="USD"))
        await session.flush()
        for product_id, quantity in items.items():
            session.add(
                CartItem(
                    cart_id=cart_id,
                    variant_id=default_variant_id(product_id),
                    product_id=product_id,
                    quantity=quantity,
                    unit_price_minor=1000,
                    currency="USD",
                )
            )
    return cart_id


async def test_a_guest_merge_combines_what_both_ids_hold_on_every_database(
    database: Database, tmp_path: Path
) -> None:
    db, photos = database, PhotoStore(tmp_path)
    guest, account = f"gst_{secrets.token_hex(8)}", f"usr_{secrets.token_hex(8)}"
    await save_profile(
        db, account, {"skin_type": "dry", "concerns": ["dryness"], "avoid_ingredients": ["fragrance"]}
    )
    await save_profile(
        db,
        guest,
        {
            "skin_type": "oily",
            "concerns": ["redness", "dryness"],
            "avoid_ingredients": ["lanolin", "Fragrance"],
            "pregnant_or_nursing": True,
            "budget_minor": 3000,
            "currency": "USD",
            "country": "NZ",
        },
    )
    await rate(db, account, "prd_a", 2, None)
    await rate(db, guest, "prd_a", 5, "loved it")  # the newer rating
    for who, product in ((account, "prd_b"), (guest, "prd_b"), (guest, "prd_c")):
        await record_view(db, who, product)
    account_cart = await a_cart(db, account, {"prd_a": 1})
    await a_cart(db, guest, {"prd_a": 3, "prd_b": 2})
    report = SkinReportRecord(id=new_report_id(), user_id=guest, analysis={}, model_hashes={})
    report.photo_path = photos.save(guest, report.id, b"\xff\xd8 a kept photo")
    await add_report(db, report)

    moved = await merge_guest(db, guest, account, photos=photos)

    assert moved == {"profiles": 1, "product_feedback": 3, "cart_items": 1, "skin_reports": 1}
    profile = await get_profile(db, account)
    assert profile is not None and await get_profile(db, guest) is None
    assert (profile.skin_type, profile.concerns, profile.avoid_ingredients) == (
        "dry",
        ["dryness", "redness"],
        ["fragrance", "lanolin"],
    )
    assert profile.pregnant_or_nursing and profile.budget_minor == 3000 and profile.country == "NZ"
    feedback = {(f["kind"], f["product_id"]): f for f in (await export_profile_data(db, account))["feedback"]}
    assert (feedback["rating", "prd_a"]["value"], feedback["rating", "prd_a"]["comment"]) == (5, "loved it")
    assert feedback["view", "prd_b"]["value"] == 2 and feedback["view", "prd_c"]["value"] == 1
    assert (await export_profile_data(db, guest))["feedback"] == []
    cart = await read_cart(db, account)
    assert cart is not None and cart.id == account_cart and cart.version == 2
    assert sorted((i.product_id, i.quantity) for i in cart.items) == [("prd_a", 1), ("prd_b", 2)]
    assert await read_cart(db, guest) is None
    carried = await get_report(db, account, report.id)
    assert carried is not None and carried.photo_path is not None
    assert photos.exists(carried.photo_path) and f"/{account}/" in f"/{carried.photo_path}"
    assert not (tmp_path / PHOTOS_DIR / guest).exists()
    assert await merged_ids(db, account) == [guest]


async def test_a_photo_an_older_merge_left_in_the_guest_folder_is_erased_with_its_report(shop: Shop) -> None:
    data_dir, db = shop.settings.data_dir, shop.services.db
    account, guest = f"usr_{secrets.token_hex(8)}", f"gst_{secrets.token_hex(8)}"
    # Before photos moved at sign-in, the report became the account's while its file stayed put.
    report = SkinReportRecord(id=new_report_id(), user_id=account, analysis={}, model_hashes={})
    report.photo_path = PhotoStore(data_dir).save(guest, report.id, HOPPER.read_bytes())
    await add_report(db, report)

    erased = await shop.call("delete_my_data", {"confirm": True}, user=account)

    assert erased["deleted"]["skin_reports"] == 1
    assert photo_files(data_dir) == []


async def test_my_clicks_are_exported_and_erased_with_my_chats(settings: Settings) -> None:
    links = {"amazon.com": {"tag": "shop-20"}}
    plain = shop_settings(settings.data_dir, affiliate_links=links)
    async with in_own_task(open_shop(plain)) as shop:
        await shop.set_product(SERUM, buy_url="https://www.amazon.com/dp/B00TTD9BRC")
        data_dir = shop.settings.data_dir
        transport = httpx.ASGITransport(app=shop.app)
        browser = httpx.AsyncClient(transport=transport, base_url=str(shop.http.base_url))
        # A guest chats and follows "Buy at amazon.com" from the widget, signs in, and follows it again.
        assert (await browser.post("/api/chat", json={"message": "a serum"})).status_code == 200
        assert (await browser.get(f"/out/{SERUM}", params={"src": "widget"})).status_code == 302
        me = await dev_sign_in(browser, EMAIL, NAME)
        account_id = me["user"]["id"]
        assert (await browser.get(f"/out/{SERUM}", params={"src": "widget"})).status_code == 302
        someone_else = await shop.http.get(f"/out/{SERUM}", params={"src": "mcp", "conv": "conv_other"})
        assert someone_else.status_code == 302

        exported = await shop.call("export_my_data", user=account_id)

        mine = exported["clicks"]
        assert [(c["product_id"], c["merchant"], c["source"]) for c in mine] == [
            (SERUM, "amazon.com", "widget"),
            (SERUM, "amazon.com", "widget"),
        ]
        chat_id = mine[0]["conversation_id"]
        assert chat_id.startswith("chs_") and all(c["conversation_id"] == chat_id for c in mine)
        assert "conv_other" not in str(mine)
        assert set(where_found(data_dir, chat_id)) == {"chat_sessions", "clicks"}

        erased = await browser.post("/api/my-data/delete", json={"confirm": True})

        assert erased.status_code == 200, erased.text
        assert erased.json()["deleted"]["clicks_unlinked"] == 2
        assert where_found(data_dir, chat_id) == {}  # no click leads back to the chat, or to the person
        assert set(where_found(data_dir, account_id)) <= SIGN_IN_TABLES
        today = datetime.now(UTC).date().isoformat()
        report = await shop.call("admin_clicks_report", {"start": today, "end": today})
        assert report["clicks"] == 3  # the shop's counts stay
        assert (await shop.call("export_my_data", user=account_id))["clicks"] == []
        await browser.aclose()


async def test_what_an_mcp_client_was_sent_over_http_is_erased_with_the_person(settings: Settings) -> None:
    """Streamable HTTP keeps every message it sends for an hour, so a dropped stream can resume: the person's
    own words in those answers go with the rest of their data, whichever session carried them."""
    me = f"usr_streams_{secrets.token_hex(4)}"
    words = f"stung my eyes {secrets.token_hex(4)}"
    async with in_own_task(open_shop(shop_settings(settings.data_dir, local_user=me))) as shop:
        data_dir = shop.settings.data_dir
        transport = httpx.ASGITransport(app=shop.app)
        async with httpx.AsyncClient(transport=transport, base_url=str(shop.http.base_url)) as http:
            mcp = McpHttp(http)  # a keyless loopback /mcp: the caller is the local user
            await mcp.initialize()
            rate = {"product_id": SERUM, "rating": 2, "comment": words}
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "rate_product", "arguments": rate},
            }
            async with mcp.post(call) as response:
                answers = [
                    e.message async for e in events(response) if e.message and e.message.get("id") == 2
                ]
        assert len(answers) == 1 and not answers[0]["result"].get("isError"), answers
        assert "mcp_stream_events" in where_found(data_dir, words)
        assert where_found(data_dir, me)["mcp_stream_events"] == {"user_id"}

        erased = await shop.call("delete_my_data", {"confirm": True})

        assert erased["deleted"]["stream_events"] >= 2  # the priming event and the answer, at least
        assert where_found(data_dir, words) == {}
        assert "mcp_stream_events" not in where_found(data_dir, me)


async def test_clicks_are_exported_unlinked_and_purged_of_chat_ids_on_every_database(
    database: Database,
) -> None:
    person, other = f"usr_{secrets.token_hex(8)}", f"usr_{secrets.token_hex(8)}"
    chat = await create_chat(database, person, now=datetime.now(UTC))
    idle = await create_chat(database, other, now=datetime(2020, 1, 1, tzinfo=UTC))
    mcp_conversation = f"conv_{secrets.token_hex(6)}"
    for user_id, conversation in [
        (None, chat.id),  # a guest's click in the chat the person's account holds now
        (person, chat.id),
        (other, idle.id),
        (None, mcp_conversation),
    ]:
        await record_click(
            database,
            product_id="prd_000000000001",
            variant_id=None,
            merchant="amazon.com",
            source="widget",
            conversation_id=conversation,
            user_id=user_id,
        )

    exported = await user_clicks(database, person)
    unlinked = await forget_user_clicks(database, person)
    await purge_expired(database, datetime.now(UTC))

    assert [c["conversation_id"] for c in exported] == [chat.id, chat.id]
    assert unlinked == 2 and await user_clicks(database, person) == []
    async with database.session() as session:
        left = (await session.execute(select(Click.conversation_id, Click.user_id))).all()
    named = {conversation for conversation, _ in left}
    assert chat.id not in named and idle.id not in named and mcp_conversation in named
    assert person not in {user for _, user in left}
