"""Reading, listing, comparing and deleting stored skin reports, each person seeing only their own."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from PIL import Image

from shine_mcp.auth.identity import identity_meta
from shine_mcp.config import Settings
from shine_mcp.models import analyze
from shine_mcp.services import Services
from tests.models.conftest import add_cheek_redness, scaled_exposure

from .conftest import b64, call, call_error, count, encode, web_user


async def analysed(client: Client, data: bytes, meta: dict[str, Any] | None = None, **args: Any) -> str:
    report = await call(client, "analyze_skin", {"image": b64(data), **args}, meta)
    return str(report["report_id"])


async def test_reports_are_listed_newest_first_a_page_at_a_time(client: Client, hopper_bytes: bytes) -> None:
    ids = [await analysed(client, hopper_bytes, keep_photo=(i == 1)) for i in range(3)]

    first = await call(client, "list_skin_reports", {"limit": 2})
    assert first["total"] == 3
    assert [r["report_id"] for r in first["reports"]] == [ids[2], ids[1]]
    assert [r["photo_kept"] for r in first["reports"]] == [False, True]
    assert first["reports"][0]["values"]["ita"] is not None
    assert first["reports"][0]["failed_gates"] == []
    assert first["next_cursor"]

    second = await call(client, "list_skin_reports", {"limit": 2, "cursor": first["next_cursor"]})
    assert [r["report_id"] for r in second["reports"]] == [ids[0]]
    assert second["next_cursor"] is None


async def test_an_empty_history_lists_nothing(client: Client) -> None:
    page = await call(client, "list_skin_reports", {})
    assert page == {"reports": [], "total": 0, "next_cursor": None}


async def test_a_made_up_cursor_is_refused(client: Client) -> None:
    assert "not one list_skin_reports returned" in await call_error(
        client, "list_skin_reports", {"cursor": "not-a-cursor"}
    )


async def test_another_persons_report_does_not_exist_for_you(
    client: Client, settings: Settings, services: Services, hopper_bytes: bytes
) -> None:
    ana, ben = web_user(settings, "usr_ana"), web_user(settings, "usr_ben")
    report_id = await analysed(client, hopper_bytes, ana, keep_photo=True)
    ben_id = await analysed(client, hopper_bytes, ben)

    for tool, args in (
        ("get_skin_report", {"report_id": report_id}),
        ("delete_skin_report", {"report_id": report_id}),
        ("compare_skin_reports", {"before_id": report_id, "after_id": ben_id}),
    ):
        message = await call_error(client, tool, args, ben)
        assert f"no skin report with id {report_id!r}" in message
    # nor for the local user, who owns everything else on this machine
    assert "no skin report" in await call_error(client, "get_skin_report", {"report_id": report_id})
    assert (await call(client, "list_skin_reports", {}, ben))["total"] == 1
    assert await count(services, "usr_ana") == 1
    assert (settings.data_dir / "photos" / "usr_ana" / f"{report_id}.jpg").is_file()
    assert (await call(client, "get_skin_report", {"report_id": report_id}, ana))["report_id"] == report_id


async def test_deleting_a_report_removes_it_and_a_second_delete_says_not_found(
    client: Client, services: Services, hopper_bytes: bytes
) -> None:
    keep, drop = await analysed(client, hopper_bytes), await analysed(client, hopper_bytes)
    assert await call(client, "delete_skin_report", {"report_id": drop, "confirm": True}) == {
        "report_id": drop,
        "photo_deleted": False,
    }
    assert "no skin report" in await call_error(client, "get_skin_report", {"report_id": drop})
    assert "no skin report" in await call_error(client, "delete_skin_report", {"report_id": drop})
    assert [r["report_id"] for r in (await call(client, "list_skin_reports", {}))["reports"]] == [keep]
    assert await count(services, "local") == 1


async def test_the_same_photo_twice_shows_no_meaningful_change(client: Client, hopper_bytes: bytes) -> None:
    before, after = await analysed(client, hopper_bytes), await analysed(client, hopper_bytes)
    result = await call(client, "compare_skin_reports", {"before_id": before, "after_id": after})
    assert result["weak"] is False and result["notes"] == []
    assert "not a medical" in result["notice"]
    for change in result["changes"]:
        assert change["verdict"] == "no_meaningful_change", change
        assert change["change"] == 0.0
        assert change["uncertainty"] > 0


async def test_redder_cheeks_are_an_increase_beyond_the_uncertainty(
    client: Client, hopper: Image.Image
) -> None:
    base = analyze(encode(hopper))
    before = await analysed(client, encode(hopper))
    after = await analysed(client, encode(add_cheek_redness(hopper, base, strength=14.0)))
    result = await call(client, "compare_skin_reports", {"before_id": before, "after_id": after})
    redness = next(c for c in result["changes"] if c["name"] == "redness")
    assert redness["verdict"] == "increased"
    assert redness["change"] > redness["uncertainty"] > 0


async def test_a_darker_photo_makes_the_comparison_weak_and_says_why(
    client: Client, hopper: Image.Image
) -> None:
    before = await analysed(client, encode(hopper))
    after = await analysed(client, encode(scaled_exposure(hopper, 0.6)))
    result = await call(client, "compare_skin_reports", {"before_id": before, "after_id": after})
    assert result["weak"] is True
    assert any(note.startswith("the light differs") for note in result["notes"])


async def test_a_withheld_metric_is_not_compared_and_the_failed_check_is_named(
    client: Client, hopper: Image.Image
) -> None:
    from tests.models.conftest import blurred

    before = await analysed(client, encode(hopper))
    after = await analysed(client, encode(blurred(hopper, 3.0)))
    result = await call(client, "compare_skin_reports", {"before_id": before, "after_id": after})
    texture = next(c for c in result["changes"] if c["name"] == "texture")
    assert texture["verdict"] == "not_comparable"
    assert texture["change"] is None and "withheld in the after photo (sharpness" in texture["note"]
    assert result["weak"] is True
    assert any("sharpness check failed in the after photo" in note for note in result["notes"])


async def test_comparing_in_reverse_order_is_allowed_and_noted(client: Client, hopper_bytes: bytes) -> None:
    older, newer = await analysed(client, hopper_bytes), await analysed(client, hopper_bytes)
    result = await call(client, "compare_skin_reports", {"before_id": newer, "after_id": older})
    assert result["days_apart"] <= 0
    assert any("'before' report is the newer one" in note for note in result["notes"])


async def test_a_report_cannot_be_compared_with_itself(client: Client, hopper_bytes: bytes) -> None:
    report_id = await analysed(client, hopper_bytes)
    message = await call_error(
        client, "compare_skin_reports", {"before_id": report_id, "after_id": report_id}
    )
    assert "the same report" in message


@pytest.mark.parametrize("tool", ["get_skin_report", "delete_skin_report"])
async def test_an_id_that_is_not_a_report_id_is_not_found(client: Client, tool: str) -> None:
    assert "list_skin_reports lists yours" in await call_error(client, tool, {"report_id": "prd_123"})


async def test_a_deleted_report_is_written_to_the_audit_log(
    client: Client, settings: Settings, hopper_bytes: bytes
) -> None:
    report_id = await analysed(client, hopper_bytes)
    await call(client, "delete_skin_report", {"report_id": report_id, "confirm": True})
    admin = identity_meta("usr_root", settings, roles=("user", "admin"))
    events = (await call(client, "admin_list_audit_events", {"action": "data_deleted"}, admin))["events"]
    assert [(e["user_id"], e["detail"]["tool"], e["detail"]["succeeded"]) for e in events] == [
        ("local", "delete_skin_report", True)
    ]
