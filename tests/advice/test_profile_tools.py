"""The profile tools: saving and clearing fields, clear refusals, ratings, views, and a person's right to
see and erase their data (with orders kept for the books)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mcp import Client

from shine_mcp.auth import audit
from shine_mcp.auth.accounts import get_user, upsert_user
from shine_mcp.auth.identity import identity_meta
from shine_mcp.auth.sessions import create_session, resolve_session
from shine_mcp.auth.tokens import create_code, find_access_token, issue
from shine_mcp.config import Settings
from shine_mcp.integrations.google import VerifiedPerson
from shine_mcp.services import Services
from shine_mcp.store.profiles import get_profile
from shine_mcp.store.skin_reports import SkinReportRecord, add_report, get_report, new_report_id
from tests.advice.conftest import Shopper

SERUM = "prd_b559697ee63c"
CLEANSER = "prd_a10998b57b6e"


async def test_a_new_person_has_an_empty_profile(shopper: Callable[[str], Shopper]) -> None:
    profile = await shopper("new").ok("get_profile")
    assert profile["exists"] is False and profile["concerns"] == [] and profile["budget"] is None


async def test_only_the_fields_given_change_and_clear_empties_them(shopper: Callable[[str], Shopper]) -> None:
    ana = shopper("ana")
    await ana.ok(
        "update_profile",
        skin_type="Dry",
        concerns=["fine lines", "Dark-Spots"],
        avoid_ingredients=["fragrance", "  shea  butter "],
        budget=49.99,
        country="new zealand",
    )
    profile = await ana.ok("update_profile", pregnant_or_nursing=True)
    assert profile["skin_type"] == "dry"
    assert profile["concerns"] == ["fine_lines", "dark_spots"]
    assert profile["avoid_ingredients"] == ["fragrance", "shea butter"]
    assert profile["budget"]["amount_minor"] == 4999 and profile["country"] == "NZ"
    assert profile["pregnant_or_nursing"] is True
    meaning = {m["word"]: m for m in profile["avoid_meaning"]}
    assert "family:fragrance" in meaning["fragrance"]["means"]
    assert "family:essential_oil" in meaning["fragrance"]["means"]  # what a shopper means by it
    assert profile["season"].startswith(("summer", "winter", "spring", "autumn"))

    cleared = await ana.ok("update_profile", clear=["budget", "avoid_ingredients", "country"], confirm=True)
    assert cleared["budget"] is None and cleared["avoid_ingredients"] == [] and cleared["country"] is None
    assert cleared["concerns"] == ["fine_lines", "dark_spots"]


async def test_bad_profile_input_is_refused_with_the_way_out(shopper: Callable[[str], Shopper]) -> None:
    bob = shopper("bob")
    # 'wrinkles' is a word Shine understands (tests/test_shopper_words.py); a misspelling is refused.
    wrinkles = await bob.refused("update_profile", concerns=["fine line", "wrinkels"])
    assert "'wrinkels'" in wrinkles and "fine_lines" in wrinkles
    assert "did you mean oily" in await bob.refused("update_profile", skin_type="oilly")
    assert "clear=['budget']" in await bob.refused("update_profile", budget=0)
    assert "more than 0" in await bob.refused("update_profile", budget=-5)
    assert "ISO code" in await bob.refused("update_profile", country="Atlantis")
    assert "vegan" in await bob.refused("update_profile", preferences=["vegann"])
    assert "nothing to change" in await bob.refused("update_profile")
    assert "both set and cleared" in await bob.refused("update_profile", budget=20, clear=["budget"])
    assert (await bob.ok("get_profile"))["exists"] is False  # nothing half-saved


async def test_ratings_replace_each_other_and_unknown_products_are_refused(
    shopper: Callable[[str], Shopper],
) -> None:
    cara = shopper("cara")
    first = await cara.ok("rate_product", product_id=SERUM, rating=5, comment="lovely")
    again = await cara.ok("rate_product", product_id=SERUM, rating=2)
    assert first["rating"] == 5 and again["rating"] == 2 and again["comment"] is None
    assert "not be recommended" in again["message"]
    assert "search_products" in await cara.refused("rate_product", product_id="prd_000000000000", rating=4)
    assert (await cara.call("rate_product", product_id=SERUM, rating=6)).is_error
    exported = await cara.ok("export_my_data")
    ratings = [f for f in exported["feedback"] if f["kind"] == "rating"]
    assert [(r["product_id"], r["value"]) for r in ratings] == [(SERUM, 2)]


async def test_export_holds_everything_and_delete_removes_it_but_keeps_orders_for_the_books(
    client: Client, services: Services, shopper: Callable[[str], Shopper], tmp_path: Path
) -> None:
    dana = shopper("dana")
    await dana.ok("update_profile", skin_type="oily", avoid_ingredients=["lanolin"])
    await dana.ok("rate_product", product_id=SERUM, rating=4)
    await dana.ok("get_product", product_id=CLEANSER)  # a view
    report = await add_report(
        services.db,
        SkinReportRecord(id=new_report_id(), user_id=dana.user_id, analysis={"metrics": []}, model_hashes={}),
    )
    await dana.ok("add_to_cart", product_id=SERUM, quantity=1)
    order = (await dana.ok("checkout"))["order"]
    await dana.ok("add_to_cart", product_id=CLEANSER, quantity=2)

    exported = await dana.ok("export_my_data")
    text = json.dumps(exported)
    assert exported["profile"]["avoid_ingredients"] == ["lanolin"]
    assert {f["kind"] for f in exported["feedback"]} == {"rating", "view"}
    assert [r["id"] for r in exported["skin_reports"]] == [report.id]
    assert order["order_id"] in text and exported["commerce"]["cart"]["items"]

    refusal = await dana.refused("delete_my_data")
    assert "confirm=true" in refusal
    assert await get_profile(services.db, dana.user_id) is not None  # nothing deleted without confirmation

    deleted = await dana.ok("delete_my_data", confirm=True)
    assert deleted["deleted"]["profile"] == 1 and deleted["deleted"]["feedback"] == 2
    assert deleted["deleted"]["skin_reports"] == 1 and deleted["deleted"]["carts"] == 1
    assert deleted["deleted"]["orders_unlinked"] == 1 and any("Orders" in k for k in deleted["kept"])
    assert await get_profile(services.db, dana.user_id) is None
    assert await get_report(services.db, dana.user_id, report.id) is None
    after = await dana.ok("export_my_data")
    assert after["profile"] is None and after["feedback"] == [] and after["skin_reports"] == []
    assert after["commerce"] == {"cart": None, "orders": [], "subscriptions": [], "memberships": []}
    again = await dana.ok("delete_my_data", confirm=True)  # idempotent
    assert set(again["deleted"].values()) == {0}


async def test_check_ingredients_applies_the_profile_unless_told_otherwise(
    shopper: Callable[[str], Shopper],
) -> None:
    retinol = "prd_706be553cc36"  # The Ordinary Retinol 0.5% in Squalane
    pia = shopper("pia")
    await pia.ok("update_profile", pregnant_or_nursing=True, avoid_ingredients=["squalane"])
    found = await pia.ok("check_ingredients", product_ids=[retinol])
    assert found["cautions"][0]["kind"] == "pregnancy"
    assert [a["because"] for a in found["avoided"]] == ["squalane"]
    told = await pia.ok(
        "check_ingredients", product_ids=[retinol], pregnant_or_nursing=False, avoid_ingredients=[]
    )
    assert all(c["kind"] != "pregnancy" for c in told["cautions"]) and told["avoided"] == []


async def test_the_export_holds_the_security_log_about_the_caller(
    client: Client, services: Services, shopper: Callable[[str], Shopper]
) -> None:
    from shine_mcp.auth import audit

    rae = shopper("rae")
    await audit.record(services.db, "sign_in", actor_id=rae.user_id, ip="203.0.113.9", method="google")
    await audit.record(services.db, "sign_in", actor_id="usr_someone_else", ip="198.51.100.1")
    exported = await rae.ok("export_my_data")
    assert [(e["action"], e["ip"]) for e in exported["security_events"]] == [("sign_in", "203.0.113.9")]


async def test_closing_an_account_erases_the_data_ends_every_way_in_and_removes_the_account(
    services: Services, settings: Settings, shopper: Callable[[str], Shopper]
) -> None:
    now = datetime.now(UTC)
    user = await upsert_user(
        services.db,
        VerifiedPerson(email="Eve@Example.com", email_verified=True, name="Eve", google_sub="g-eve"),
        now=now,
    )
    eve = shopper("eve")
    eve.user_id, eve.meta = user.id, identity_meta(user.id, settings)
    await eve.ok("update_profile", skin_type="dry")
    await eve.ok("add_to_cart", product_id=SERUM, quantity=1)
    cookie, _session = await create_session(services.db, settings, user.id, now=now)
    issued = await issue(
        services.db, family_id="fam_eve", client_id="client-eve", user_id=user.id, scopes=["shine:read"],
        resource="http://127.0.0.1/mcp", with_refresh=True, now=now,
    )  # fmt: skip
    assert issued is not None
    await create_code(
        services.db, client_id="client-eve", user_id=user.id, scopes=["shine:read"], code_challenge="x" * 43,
        redirect_uri="http://127.0.0.1/cb", redirect_uri_provided_explicitly=True, resource="http://127.0.0.1/mcp",
        now=now,
    )  # fmt: skip
    other = shopper("other")
    await other.ok("update_profile", skin_type="oily")

    refusal = await eve.refused("close_my_account")
    assert "confirm=true" in refusal and await get_user(services.db, user.id) is not None

    closed = await eve.ok("close_my_account", confirm=True)
    assert closed["deleted"]["profile"] == 1 and closed["deleted"]["carts"] == 1
    assert closed["deleted"]["account"] == 1 and closed["deleted"]["web_sessions_ended"] == 1
    assert closed["deleted"]["app_tokens_revoked"] == 2 and closed["deleted"]["sign_in_codes_deleted"] == 1
    assert "signed out everywhere" in closed["message"]
    assert await get_user(services.db, user.id) is None
    assert await get_profile(services.db, user.id) is None
    assert await resolve_session(services.db, settings, cookie, now=now) is None
    assert await find_access_token(services.db, issued.access_token) is None
    assert await get_profile(services.db, other.user_id) is not None  # nobody else's data

    events = await audit.events(services.db, actor_id=user.id, action="data_deleted")
    assert [(e.detail["tool"], e.detail["succeeded"]) for e in events] == [
        ("close_my_account", True),
        ("close_my_account", False),  # the unconfirmed call, refused
    ]

    # The same Google account signing in again gets a new, empty account.
    again = await upsert_user(
        services.db, VerifiedPerson(email="eve@example.com", email_verified=True, google_sub="g-eve"), now=now
    )
    assert again.id != user.id and again.name is None


async def test_closing_a_guest_or_local_connection_says_there_was_no_account(
    shopper: Callable[[str], Shopper],
) -> None:
    local = shopper("local")
    await local.ok("update_profile", skin_type="normal")
    closed = await local.ok("close_my_account", confirm=True)
    assert closed["deleted"]["account"] == 0 and closed["deleted"]["profile"] == 1
    assert "no sign-in account" in closed["message"]
