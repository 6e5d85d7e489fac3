"""analyze_skin as an MCP client sees it: a real face photo in every accepted form becomes a stored report."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

from mcp import Client
from PIL import Image

from shine_mcp.clock import utcnow
from shine_mcp.config import Settings
from shine_mcp.models import NOTICE, Analysis
from shine_mcp.models.assets import model_infos
from shine_mcp.services import Services
from shine_mcp.store import chat

from .conftest import b64, call, call_error, count, data_url, encode, web_user

REFUSED = {"diagnosis", "skin_age", "fitzpatrick_phototype", "hydration", "sebum", "skin_health_score"}


def photo_with_gps(hopper: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model X"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    gps[3] = "E"
    gps[4] = (2.0, 21.0, 3.0)  # GPSLongitude
    return encode(hopper, exif=exif.tobytes(), comment=b"taken at home")


async def test_a_base64_selfie_becomes_a_stored_report_with_notice_refusals_and_model_hashes(
    client: Client, services: Services, hopper_bytes: bytes
) -> None:
    report = await call(client, "analyze_skin", {"image": b64(hopper_bytes)})

    assert re.fullmatch(r"rep_[0-9a-f]{24}", report["report_id"])
    assert report["photo_kept"] is False
    assert report["notice"] == NOTICE
    assert {w["name"] for w in report["withheld"] if w["kind"] == "refusal"} == REFUSED
    assert {(m["name"], m["sha256"]) for m in report["models"]} == {(m.name, m.sha256) for m in model_infos()}
    assert report["face"]["box"]["width"] > 100
    metrics = {m["name"]: m for m in report["metrics"]}
    assert metrics["ita"]["value"] is not None and metrics["ita"]["confidence"] > 0
    assert await count(services, "local") == 1


async def test_a_data_url_is_read_like_base64(client: Client, hopper_bytes: bytes) -> None:
    report = await call(client, "analyze_skin", {"image": data_url(hopper_bytes)})
    assert report["image"]["format"] == "jpeg"
    assert report["image"]["width"] == Image.open(io.BytesIO(hopper_bytes)).width


async def test_url_safe_base64_with_line_breaks_and_no_padding_is_accepted(
    client: Client, hopper: Image.Image
) -> None:
    png = encode(hopper, "PNG")
    text = b64(png).replace("+", "-").replace("/", "_").rstrip("=")
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    report = await call(client, "analyze_skin", {"image": wrapped})
    assert report["image"]["format"] == "png"


async def test_the_stored_report_is_what_analyze_skin_returned(client: Client, hopper_bytes: bytes) -> None:
    made = await call(client, "analyze_skin", {"image": b64(hopper_bytes)})
    stored = await call(client, "get_skin_report", {"report_id": made["report_id"]})
    assert stored == made
    Analysis.model_validate({k: v for k, v in stored.items() if k in Analysis.model_fields})


async def test_progress_is_reported_at_each_step(client: Client, hopper_bytes: bytes) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    result = await client.call_tool("analyze_skin", {"image": b64(hopper_bytes)}, progress_callback=progress)
    assert not result.is_error
    messages = [m for _, _, m in seen]
    assert messages == [
        "reading the photo",
        "finding the face",
        "measuring the skin",
        "saving the report",
        "done",
    ]
    assert [v for v, _, _ in seen] == [0, 1, 2, 3, 4]


async def test_questionnaire_answers_decide_the_skin_type_and_are_named_as_evidence(
    client: Client, hopper_bytes: bytes
) -> None:
    answers = {
        "oiliness_by_midday": "t_zone",
        "tightness_after_washing": "none",
        "reactions_to_products": "often",
    }
    report = await call(client, "analyze_skin", {"image": b64(hopper_bytes), "answers": answers})
    assert report["skin_type"]["value"] == "combination"
    assert report["skin_type"]["sensitive"] is True
    assert "answer: oiliness_by_midday=t_zone" in report["skin_type"]["evidence"]


async def test_an_unknown_questionnaire_answer_is_refused_before_analysis(
    client: Client, services: Services, hopper_bytes: bytes
) -> None:
    result = await client.call_tool(
        "analyze_skin", {"image": b64(hopper_bytes), "answers": {"oiliness_by_midday": "very"}}
    )
    assert result.is_error
    assert await count(services, "local") == 0


async def test_a_local_file_path_works_over_stdio(
    client: Client, tmp_path: Path, hopper_bytes: bytes
) -> None:
    photo = tmp_path / "selfie.jpg"
    photo.write_bytes(hopper_bytes)
    report = await call(client, "analyze_skin", {"image": str(photo)})
    assert report["image"]["format"] == "jpeg"
    by_url = await call(client, "analyze_skin", {"image": photo.as_uri()})
    assert by_url["metrics"] == report["metrics"]


async def test_a_kept_photo_is_a_metadata_free_jpeg_and_goes_with_its_report(
    client: Client, settings: Settings, services: Services, hopper: Image.Image
) -> None:
    original = photo_with_gps(hopper)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the test photo does carry GPS

    report = await call(client, "analyze_skin", {"image": b64(original), "keep_photo": True})

    assert report["photo_kept"] is True
    assert "gps" in report["image"]["metadata_removed"]
    kept = settings.data_dir / "photos" / "local" / f"{report['report_id']}.jpg"
    assert kept.is_file()
    assert kept.stat().st_mode & 0o077 == 0  # readable by Shine's user only
    stored = Image.open(kept)
    assert stored.format == "JPEG"
    assert stored.size == hopper.size
    assert len(stored.getexif()) == 0
    assert stored.getexif().get_ifd(0x8825) == {}
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(stored.info)
    assert b"PhoneMaker" not in kept.read_bytes() and b"taken at home" not in kept.read_bytes()

    deleted = await call(client, "delete_skin_report", {"report_id": report["report_id"], "confirm": True})
    assert deleted == {"report_id": report["report_id"], "photo_deleted": True}
    assert not kept.exists()
    assert await count(services, "local") == 0


async def test_without_keep_photo_no_photo_is_written(
    client: Client, settings: Settings, hopper_bytes: bytes
) -> None:
    await call(client, "analyze_skin", {"image": b64(hopper_bytes)})
    assert not (settings.data_dir / "photos").exists()


async def test_a_web_user_gets_reports_of_their_own(
    client: Client, settings: Settings, services: Services, hopper_bytes: bytes
) -> None:
    ana = web_user(settings, "usr_ana")
    report = await call(client, "analyze_skin", {"image": data_url(hopper_bytes), "keep_photo": True}, ana)
    assert (settings.data_dir / "photos" / "usr_ana" / f"{report['report_id']}.jpg").is_file()
    assert await count(services, "usr_ana") == 1
    assert await count(services, "usr_ben") == 0
    assert await count(services, "local") == 0


async def add_upload(services: Services, user_id: str, data: bytes, *, age: timedelta = timedelta(0)) -> str:
    """A photo uploaded to the web chat (the web shell's upload endpoint stores it so), `age` ago."""
    size = Image.open(io.BytesIO(data)).size
    row = await chat.add_upload(
        services.db,
        user_id,
        data,
        width=size[0],
        height=size[1],
        keep=False,
        ttl=timedelta(hours=1),
        now=utcnow() - age,
    )
    return row.id


async def test_a_chat_upload_is_analysed_by_its_id(
    client: Client, settings: Settings, services: Services, hopper_bytes: bytes
) -> None:
    ana = web_user(settings, "usr_ana")
    upload_id = await add_upload(services, "usr_ana", hopper_bytes)
    report = await call(client, "analyze_skin", {"image": upload_id}, ana)
    assert report["image"]["format"] == "jpeg"
    assert await count(services, "usr_ana") == 1


async def test_someone_elses_or_an_expired_upload_is_unknown(
    client: Client, settings: Settings, services: Services, hopper_bytes: bytes
) -> None:
    ana = web_user(settings, "usr_ana")
    bens = await add_upload(services, "usr_ben", hopper_bytes)
    stale = await add_upload(services, "usr_ana", hopper_bytes, age=timedelta(hours=2))
    for upload_id in (bens, stale):
        message = await call_error(client, "analyze_skin", {"image": upload_id}, ana)
        assert f"unknown upload id {upload_id!r}" in message
    assert await count(services, "usr_ana") == 0
