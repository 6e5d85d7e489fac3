"""Photos and references analyze_skin cannot use: each gets a clear ToolError, and nothing is stored."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from mcp import Client
from PIL import Image

from shine_mcp.config import Settings
from shine_mcp.services import Services
from tests.models.test_intake import png_bomb

from .conftest import SKIMAGE_DATA, b64, call_error, count, data_url, encode, web_user


def no_photos_written(settings: Settings) -> bool:
    photos = settings.data_dir / "photos"
    return not photos.exists() or not any(photos.rglob("*"))


async def refused(
    client: Client, services: Services, settings: Settings, image: str, **meta_user: str
) -> str:
    """Call analyze_skin (asking to keep the photo), expect a ToolError, and check nothing was stored."""
    user = meta_user.get("user", "local")
    meta = web_user(settings, user) if user != "local" else None
    before = await count(services, user)
    message = await call_error(client, "analyze_skin", {"image": image, "keep_photo": True}, meta)
    assert await count(services, user) == before
    assert no_photos_written(settings)
    return message


BAD_PHOTOS = {
    "zero-byte file": (b"", "empty"),
    "GIF": ((SKIMAGE_DATA / "no_time_for_that_tiny.gif").read_bytes(), "GIF files are not supported"),
    "random bytes": (
        np.random.default_rng(3).integers(0, 256, 8192, dtype=np.uint8).tobytes(),
        "not a photo",
    ),
    "1x1 image": (encode(Image.new("RGB", (1, 1)), "PNG"), "1 px on its short side"),
    "20 000 px wide image": (encode(Image.new("RGB", (20_000, 200), "white"), "PNG"), "20000"),
    "PNG bomb": (png_bomb(16_000, 16_000), "MP is accepted"),
    "photo without a face": ((SKIMAGE_DATA / "coffee.png").read_bytes(), "no face found"),
}


@pytest.mark.parametrize("name", list(BAD_PHOTOS))
async def test_a_bad_photo_file_is_refused_and_nothing_is_stored(
    name: str, client: Client, services: Services, settings: Settings, tmp_path: Path
) -> None:
    data, expected = BAD_PHOTOS[name]
    photo = tmp_path / "upload.bin"
    photo.write_bytes(data)
    message = await refused(client, services, settings, str(photo))
    assert expected in message
    if data:  # base64 of nothing is not a photo reference at all; the file above covers it
        assert expected in await refused(client, services, settings, b64(data))


async def test_a_truncated_jpeg_is_refused_as_damaged(
    client: Client, services: Services, settings: Settings, hopper_bytes: bytes
) -> None:
    message = await refused(client, services, settings, b64(hopper_bytes[: len(hopper_bytes) // 2]))
    assert "damaged or incomplete" in message and "send it again" in message


async def test_an_empty_data_url_is_refused_as_empty(
    client: Client, services: Services, settings: Settings
) -> None:
    assert "empty" in await refused(client, services, settings, "data:image/jpeg;base64,")


async def test_a_data_url_that_is_not_base64_or_not_an_image_is_refused(
    client: Client, services: Services, settings: Settings, hopper_bytes: bytes
) -> None:
    assert "base64" in await refused(client, services, settings, "data:image/jpeg,%FF%D8%FF")
    text_url = "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    assert "text/plain" in await refused(client, services, settings, text_url)


async def test_text_that_is_not_base64_says_what_image_may_be(
    client: Client, services: Services, settings: Settings
) -> None:
    message = await refused(client, services, settings, "here is my selfie, what do you think?")
    assert "not valid base64" in message
    assert "data URL" in message and "upl_" in message and "https URL" in message


async def test_an_id_shine_does_not_know_is_not_mistaken_for_base64(
    client: Client, services: Services, settings: Settings
) -> None:
    message = await refused(client, services, settings, "att_selfie01")
    assert "'att_selfie01', which is neither a photo nor a reference Shine knows" in message


async def test_a_photo_over_the_size_limit_is_refused_before_decoding(
    client: Client, services: Services, settings: Settings
) -> None:
    huge = b"\xff\xd8\xff" + b"\x00" * (settings.max_photo_bytes + 1)
    assert "at most 15.0 MB" in await refused(client, services, settings, b64(huge))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://127.0.0.1/x.jpg", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.1/", "10.0.0.1 is a private network address"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/x.jpg", "loopback"),
        ("https://[::ffff:192.168.0.1]/x.jpg", "private network address (inside an IPv6 address)"),
        ("https://localhost/x.jpg", "localhost resolves to"),
        ("http://example.com/x.jpg", "only https URLs are fetched"),
        ("ftp://example.com/x.jpg", "must start with https://"),
        ("https://user:secret@example.com/x.jpg", "user name or password"),
    ],
)
async def test_a_url_shine_must_not_fetch_is_refused(
    url: str, expected: str, client: Client, services: Services, settings: Settings
) -> None:
    message = await refused(client, services, settings, url)
    assert expected in message
    assert "secret" not in message


async def test_a_file_path_over_http_is_refused_even_for_a_real_photo(
    client: Client, services: Services, settings: Settings, tmp_path: Path, hopper_bytes: bytes
) -> None:
    photo = tmp_path / "selfie.jpg"
    photo.write_bytes(hopper_bytes)
    for reference in (str(photo), photo.as_uri(), "~/selfie.jpg", "selfie.jpg"):
        message = await refused(client, services, settings, reference, user="usr_ana")
        assert "only work when Shine runs on your own computer" in message


async def test_a_missing_file_or_a_folder_is_refused_with_its_path(
    client: Client, services: Services, settings: Settings, tmp_path: Path
) -> None:
    assert f"no file at {tmp_path / 'nope.jpg'}" in await refused(
        client, services, settings, str(tmp_path / "nope.jpg")
    )
    assert "is a folder" in await refused(client, services, settings, str(tmp_path))
    assert "not a regular file" in await refused(client, services, settings, "/dev/zero")


async def test_an_unknown_upload_id_is_refused(
    client: Client, services: Services, settings: Settings
) -> None:
    message = await refused(client, services, settings, "upl_0123456789abcdef", user="usr_ana")
    assert "unknown upload id 'upl_0123456789abcdef'" in message


async def test_a_refused_web_photo_stores_nothing_for_anyone(
    client: Client, services: Services, settings: Settings, hopper_bytes: bytes
) -> None:
    cut = hopper_bytes[:2000]
    await refused(client, services, settings, data_url(cut), user="usr_ana")
    assert await count(services, "local") == 0
