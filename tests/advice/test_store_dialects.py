"""The advice store on SQLite and on a throwaway PostgreSQL: profiles, feedback, the collaborative signals
and the catalog index's reads run the same on both."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from shine_mcp.advice.catalog_index import CatalogIndex
from shine_mcp.config import Settings
from shine_mcp.knowledge import load_knowledge
from shine_mcp.store.catalog import catalog_fingerprint, index_rows, read_products, upsert_products
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.profiles import (
    delete_user_profile_data,
    export_profile_data,
    get_profile,
    rate,
    record_view,
    save_profile,
)
from shine_mcp.store.signals import collaborative_signals
from tests.test_store import record


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    database = await open_database(Settings(data_dir=tmp_path, database_url=url))
    async with database.session() as session, session.begin():
        await session.execute(text("DELETE FROM products"))
    yield database
    await database.close()


def someone() -> str:
    return f"usr_{secrets.token_hex(6)}"


async def test_a_profile_is_created_changed_exported_and_deleted(db: Database) -> None:
    user = someone()
    assert await get_profile(db, user) is None
    await save_profile(
        db, user, {"skin_type": "dry", "concerns": ["dryness"], "budget_minor": 4000, "currency": "USD"}
    )
    changed = await save_profile(db, user, {"avoid_ingredients": ["lanolin"], "pregnant_or_nursing": True})
    assert (changed.skin_type, changed.concerns, changed.avoid_ingredients) == (
        "dry",
        ["dryness"],
        ["lanolin"],
    )
    assert changed.pregnant_or_nursing and changed.budget_minor == 4000
    await rate(db, user, "prd_a", 5, "great")
    await rate(db, user, "prd_a", 2, None)
    await record_view(db, user, "prd_b")
    await record_view(db, user, "prd_b")
    exported = await export_profile_data(db, user)
    kinds = {(f["product_id"], f["kind"]): f["value"] for f in exported["feedback"]}
    assert kinds == {("prd_a", "rating"): 2, ("prd_b", "view"): 2}
    assert await delete_user_profile_data(db, user) == {"profile": 1, "feedback": 2}
    assert await get_profile(db, user) is None


async def test_neighbours_are_people_who_liked_the_same_products_or_share_the_skin_type(db: Database) -> None:
    me, fan, twin, stranger = someone(), someone(), someone(), someone()
    await save_profile(db, me, {"skin_type": "oily"})
    await save_profile(db, twin, {"skin_type": "oily", "concerns": ["acne"]})
    await save_profile(db, stranger, {"skin_type": "dry"})
    await rate(db, me, "prd_liked", 5, None)
    await rate(db, fan, "prd_liked", 4, None)
    await rate(db, fan, "prd_other", 5, None)
    await rate(db, twin, "prd_twin", 1, None)
    await rate(db, stranger, "prd_far", 5, None)
    signals = await collaborative_signals(db, me, "oily")
    assert signals.mine == {"prd_liked": 1.0}
    assert signals.others[fan] == {"prd_liked": 0.5, "prd_other": 1.0}
    assert signals.others[twin] == {"prd_twin": -1.0}
    assert stranger not in signals.others
    assert signals.profiles[twin] == ("oily", frozenset({"acne"}))


async def test_the_catalog_index_reads_the_same_on_both(db: Database) -> None:
    await upsert_products(
        db,
        [
            record(
                "calm",
                name="Calm Serum",
                ingredients="Aqua, Niacinamide, Azelaic Acid",
                skin_types=["sensitive"],
            ),
            record("night", name="Night Serum", ingredients="Aqua, Retinol, Squalane", category="serum"),
        ],
        source="test",
    )
    before = await catalog_fingerprint(db)
    rows = await index_rows(db)
    index = CatalogIndex(rows, load_knowledge())
    assert len(index) == 2 and index.ids == sorted(index.ids)
    unsafe = {index.ids[i] for i in range(2) if index.pregnancy_unsafe[i]}
    fresh = await read_products(db, index.ids)
    assert {fresh[i].name for i in unsafe} == {"Night Serum"}
    assert fresh[index.ids[0]].ingredients and isinstance(fresh[index.ids[0]].ingredients, list)
    assert index.containing({"family:retinoid"}, []).sum() == 1
    assert index.containing(set(), ["squal"]).sum() == 1
    await upsert_products(db, [record("calm", name="Calm Serum", stock=0)], source="test")
    assert await catalog_fingerprint(db) != before
