"""The skin-report store on SQLite and a throwaway PostgreSQL, and the kept-photo folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.store import skin_reports as store
from shine_mcp.store.db import Database, open_database
from shine_mcp.store.photos import PhotoStore, user_folder
from shine_mcp.store.skin_reports import SkinReportRecord


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        database = await open_database(
            Settings(data_dir=tmp_path, database_url=request.getfixturevalue("postgres_url"))
        )
        async with database.session() as session, session.begin():
            await session.execute(text("DELETE FROM skin_reports"))
    else:
        database = await open_database(Settings(data_dir=tmp_path, database_url=None))
    yield database
    await database.close()


def record(user_id: str, **fields: object) -> SkinReportRecord:
    return SkinReportRecord(
        id=fields.pop("id", None) or store.new_report_id(),
        user_id=user_id,
        analysis={"metrics": []},
        model_hashes={"skin_metrics": "ab" * 32},
        **fields,
    )


async def test_pages_continue_across_reports_made_in_the_same_instant(db: Database) -> None:
    same = utcnow()
    ids = sorted(store.new_report_id() for _ in range(5))
    for report_id in ids:
        await store.add_report(db, record("usr_ana", id=report_id, created_at=same))
    older = await store.add_report(db, record("usr_ana", created_at=same - timedelta(days=1)))
    await store.add_report(db, record("usr_ben", created_at=same))

    seen: list[str] = []
    before = None
    while True:
        page = await store.list_reports(db, "usr_ana", 2, before)
        if not page:
            break
        seen += [r.id for r in page]
        before = (page[-1].created, page[-1].id)
    assert seen == [*reversed(ids), older.id]
    assert await store.count_reports(db, "usr_ana") == 6


async def test_reads_and_deletes_only_see_the_callers_reports(db: Database) -> None:
    mine = await store.add_report(db, record("usr_ana"))
    assert await store.get_report(db, "usr_ben", mine.id) is None
    assert await store.delete_report(db, "usr_ben", mine.id) is None
    found = await store.get_report(db, "usr_ana", mine.id)
    assert found is not None and found.created.tzinfo is not None


async def test_a_failing_photo_deletion_keeps_the_report(db: Database) -> None:
    mine = await store.add_report(db, record("usr_ana", photo_path="photos/usr_ana/x.jpg"))

    async def fails(_: SkinReportRecord) -> None:
        raise OSError("disk on fire")

    with pytest.raises(OSError):
        await store.delete_report(db, "usr_ana", mine.id, fails)
    assert await store.get_report(db, "usr_ana", mine.id) is not None


async def test_deleting_a_persons_data_removes_all_their_reports_and_photos(
    db: Database, tmp_path: Path
) -> None:
    photos = PhotoStore(tmp_path)
    kept = photos.save("usr_ana", "rep_a", b"jpeg")
    leftover = photos.save("usr_ana", "rep_gone", b"jpeg")  # a report deleted earlier left its photo
    bens = photos.save("usr_ben", "rep_b", b"jpeg")
    await store.add_report(db, record("usr_ana", photo_path=kept))
    await store.add_report(db, record("usr_ana"))
    await store.add_report(db, record("usr_ben", photo_path=bens))

    assert await store.delete_user_reports(db, photos, "usr_ana") == 2

    assert await store.count_reports(db, "usr_ana") == 0
    assert not (tmp_path / kept).exists() and not (tmp_path / leftover).exists()
    assert not (tmp_path / "photos" / "usr_ana").exists()
    assert await store.count_reports(db, "usr_ben") == 1
    assert (tmp_path / bens).is_file()


def test_photo_folders_never_leave_the_photos_folder(tmp_path: Path) -> None:
    photos = PhotoStore(tmp_path)
    assert user_folder("usr_ana") == "usr_ana"
    for hostile in ("../../etc", "..", "a/b", "", "x" * 100, "séverine"):
        folder = user_folder(hostile)
        assert folder.startswith("u_") and "/" not in folder
    path = photos.save("../../etc", "rep_0123", b"jpeg")
    assert (tmp_path / path).resolve().is_relative_to((tmp_path / "photos").resolve())
    with pytest.raises(ValueError):
        photos.path("../secret.key")
    with pytest.raises(ValueError):
        photos.save("usr_ana", "../rep", b"jpeg")
    assert photos.delete(path) is True
    assert photos.delete(path) is False
    assert not (tmp_path / path).parent.exists()
