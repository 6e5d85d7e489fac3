"""Bad input gets a clear, actionable refusal; good input loses its metadata and keeps its colours."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from shine_mcp.models import ImageRejected, analyze, clean_jpeg_bytes
from shine_mcp.models.intake import MAX_DECODED_PIXELS, keepable_photo, open_photo

from .conftest import SKIMAGE_DATA, encode


def rejected(data: bytes) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        analyze(data)
    assert caught.value.message and "Traceback" not in caught.value.message
    return caught.value


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge image, with a tiny compressed body of zeros."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_a_zero_byte_file_is_refused_as_empty() -> None:
    error = rejected(b"")
    assert error.code == "corrupt"
    assert "empty" in error.message


def test_a_truncated_jpeg_is_refused_as_damaged(hopper_bytes: bytes) -> None:
    error = rejected(hopper_bytes[: len(hopper_bytes) // 2])
    assert error.code == "corrupt"
    assert "send it again" in error.message


def test_a_png_bomb_is_refused_before_decoding() -> None:
    error = rejected(png_bomb(30_000, 30_000))
    assert error.code in ("decompression_bomb", "too_large")


def test_a_png_claiming_too_many_pixels_within_the_side_limit_is_a_bomb() -> None:
    error = rejected(png_bomb(16_000, 16_000))
    assert error.code == "decompression_bomb"
    assert "MP" in error.message


def test_a_gif_is_refused_by_name() -> None:
    error = rejected((SKIMAGE_DATA / "no_time_for_that_tiny.gif").read_bytes())
    assert error.code == "unsupported_format"
    assert error.message.startswith("GIF files are not supported")
    assert "JPEG, PNG or WebP" in error.message


def test_random_bytes_are_refused_as_not_a_photo() -> None:
    noise = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    error = rejected(noise)
    assert error.code == "unsupported_format"


def test_a_one_pixel_image_is_refused_as_too_small() -> None:
    error = rejected(encode(Image.new("RGB", (1, 1)), "PNG"))
    assert error.code == "too_small"
    assert "1 px on its short side" in error.message


def test_a_20000_px_wide_image_is_refused_as_too_large() -> None:
    error = rejected(encode(Image.new("RGB", (20_000, 200), "white"), "PNG"))
    assert error.code == "too_large"
    assert "20000" in error.message


def test_a_file_over_15_mb_is_refused_before_parsing() -> None:
    error = rejected(b"\xff\xd8\xff" + b"\x00" * (15 * 1024 * 1024 + 1))
    assert error.code == "too_large"


def test_webp_and_png_photos_are_accepted(hopper: Image.Image) -> None:
    for fmt in ("WEBP", "PNG"):
        result = analyze(encode(hopper, fmt))
        assert result.image.format == fmt.lower()


def test_exif_orientation_is_applied_before_the_face_is_searched(hopper: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    data = encode(hopper.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())
    result = analyze(data)
    assert (result.image.width, result.image.height) == hopper.size
    assert abs(result.face.roll_deg) < 10


def test_gps_metadata_is_dropped_and_reported(hopper: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    data = encode(hopper, exif=exif.tobytes())
    assert open_photo(data).image.getexif().get_ifd(0x8825) == {}
    assert "gps" in analyze(data).image.metadata_removed
    cleaned = Image.open(io.BytesIO(clean_jpeg_bytes(data)))
    assert len(cleaned.getexif()) == 0
    assert "icc_profile" not in cleaned.info


def test_an_embedded_profile_is_converted_and_its_absence_is_stated(hopper_bytes: bytes) -> None:
    rocket = open_photo((SKIMAGE_DATA / "rocket.jpg").read_bytes())
    assert rocket.icc == "converted"
    assert rocket.icc_profile_name == "Adobe RGB (1998)"
    # Adobe RGB's wider gamut: converting changes the pixels, so the conversion really ran
    before = np.asarray(rocket.image, dtype=np.int16)
    after = np.asarray(rocket.to_srgb(rocket.image), dtype=np.int16)
    assert np.abs(before - after).max() > 5
    assert open_photo(hopper_bytes).icc == "assumed_srgb"


def test_a_large_jpeg_is_decoded_at_reduced_size(hopper: Image.Image) -> None:
    big = hopper.resize((hopper.width * 4, hopper.height * 4))
    result = open_photo(encode(big))
    assert result.original_size == big.size
    assert result.scale < 1.0
    assert min(result.image.size) >= 480


def test_a_png_of_7990_px_square_is_refused_from_its_header_not_decoded() -> None:
    # 63.8 MP is under the 64 MP every format used to share; decoding it whole costs ~600 MB
    error = rejected(png_bomb(7990, 7990))
    assert error.code == "too_large"
    assert "16 MP" in error.message and "JPEG" in error.message


def test_a_large_png_is_reduced_as_soon_as_it_is_decoded(hopper: Image.Image) -> None:
    big = hopper.resize((hopper.width * 5, hopper.height * 5))
    result = open_photo(encode(big, "PNG"))
    assert result.original_size == big.size
    assert result.scale < 1.0
    assert 720 <= min(result.image.size) < min(big.size)


def test_a_jpeg_is_never_decoded_past_the_pixel_budget() -> None:
    # even when a caller asks for every pixel (a face too small at the first decode asks for more)
    big = Image.new("RGB", (6000, 4000), (200, 160, 140))
    result = open_photo(encode(big, quality=80), min_short_side=10**9)
    assert result.original_size == (6000, 4000)
    assert result.image.width * result.image.height <= MAX_DECODED_PIXELS


def test_a_kept_photo_is_stored_at_most_2048_px_on_its_long_side(hopper: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the kept copy must come out upright
    big = hopper.resize((hopper.width * 8, hopper.height * 8)).transpose(Image.Transpose.ROTATE_90)
    kept = keepable_photo(encode(big, exif=exif.tobytes()))
    stored = Image.open(io.BytesIO(kept.jpeg))
    assert stored.size == kept.size and 1536 <= max(stored.size) <= 2048
    assert kept.original_size == (hopper.width * 8, hopper.height * 8)
    assert stored.width < stored.height  # upright, like the original portrait
    assert len(stored.getexif()) == 0
