"""Photo intake: format sniffing, size and bomb limits, orientation, colour profile, no metadata.

Nothing past this module sees the encoded bytes, EXIF or GPS: only oriented RGB pixels.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from PIL import Image, ImageCms

from . import cores
from .errors import ImageRejected

PhotoFormat = Literal["jpeg", "png", "webp"]
IccHandling = Literal["converted", "assumed_srgb"]

MAX_BYTES = 15 * 1024 * 1024
MAX_PIXELS = 64_000_000  # a 48-50 MP phone sensor fits; a small file claiming more is a bomb
# No photo is ever decoded at more pixels than this (~50 MB as RGB, 64 MB as RGBA): a JPEG is decoded at
# 1/2, 1/4 or 1/8 scale straight from the DCT until it fits; PNG and WebP cannot be, so one claiming more
# is refused from its header. A 7990x7990 PNG bomb of 205 KB would otherwise cost ~600 MB to decode.
MAX_DECODED_PIXELS = 4096 * 4096
KEPT_LONG_SIDE = 2048  # a photo kept for later (chat uploads, analyze_skin's keep_photo) is stored this big
MAX_SIDE = 16_384  # WebP's own limit is 16 383; no phone camera is wider
MIN_SIDE = 128  # below this there is nothing to find a face in
ANALYSIS_SHORT_SIDE = 720  # JPEG decoding stops at the smallest DCT scale that keeps this many pixels

# Formats people send that we recognise only to say no clearly.
UNSUPPORTED_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"%PDF", "PDF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftyphevc", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypmsf1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (0, b"<svg", "SVG"),
    (0, b"<?xml", "SVG/XML"),
)
SEND_INSTEAD = "send the photo as JPEG, PNG or WebP"


@dataclass(frozen=True)
class IntakeResult:
    """Decoded pixels ready for analysis, and what intake did to get them.

    `image` is RGB, upright, possibly decoded at a reduced scale (`scale` = analysed / original
    pixels); it is still in the camera's colour space: call `to_srgb` on the pixels you measure, so
    the costly profile conversion runs on a face crop, not on 12 megapixels."""

    image: Image.Image
    format: PhotoFormat
    original_size: tuple[int, int]  # width, height after orientation
    scale: float
    icc: IccHandling
    icc_profile_name: str | None
    metadata_removed: tuple[str, ...]
    icc_profile: bytes | None

    def to_srgb(self, image: Image.Image) -> Image.Image:
        if self.icc_profile is None:
            return image
        return ImageCms.applyTransform(image, _transform_to_srgb(self.icc_profile)) or image


def sniff_format(data: bytes) -> PhotoFormat:
    """Name the format from magic bytes; never trust a file name or a declared MIME type."""
    if not data:
        raise ImageRejected("corrupt", "the file is empty (0 bytes); " + SEND_INSTEAD)
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for offset, signature, name in UNSUPPORTED_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            hint = " (on an iPhone: Settings > Camera > Formats > Most Compatible)" if "HEI" in name else ""
            raise ImageRejected("unsupported_format", f"{name} files are not supported; {SEND_INSTEAD}{hint}")
    raise ImageRejected("unsupported_format", f"this file is not a photo format Shine reads; {SEND_INSTEAD}")


def check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        mb = len(data) / 1024 / 1024
        raise ImageRejected(
            "too_large", f"the file is {mb:.1f} MB; at most 15 MB is accepted, so export a smaller JPEG"
        )


def check_dimensions(width: int, height: int, fmt: PhotoFormat = "jpeg") -> None:
    """Refuse from the header alone, before a single pixel is decoded."""
    if max(width, height) > MAX_SIDE:
        raise ImageRejected(
            "too_large",
            f"the photo is {width}x{height} px; at most {MAX_SIDE} px per side is accepted, so resize it",
        )
    if width * height > MAX_PIXELS:
        raise ImageRejected(
            "decompression_bomb",
            f"the photo claims {width}x{height} px ({width * height / 1e6:.0f} MP); at most "
            f"{MAX_PIXELS // 1_000_000} MP is accepted, so resize it",
        )
    if fmt != "jpeg" and width * height > MAX_DECODED_PIXELS:
        raise ImageRejected(
            "too_large",
            f"the photo is {width}x{height} px ({width * height / 1e6:.0f} MP); a {fmt.upper()} photo may have "
            f"at most {MAX_DECODED_PIXELS // 1_000_000} MP, so send it as a JPEG or resize it",
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(
            "too_small",
            f"the photo is {min(width, height)} px on its short side; at least {MIN_SIDE} px is needed "
            "to find a face, and 480 px for a full analysis",
        )


def open_photo(data: bytes, min_short_side: int = ANALYSIS_SHORT_SIDE) -> IntakeResult:
    """Bytes -> upright RGB pixels without metadata, or `ImageRejected` saying what to send instead.

    Decoded no larger than needed for `min_short_side` pixels on the short side (and never past
    `MAX_DECODED_PIXELS`): the analysis sees a reduced photo and knows by how much (`scale`)."""
    with cores.ANALYSIS.busy():
        return _decode(data, lambda w, h: min(w, h) / max(min_short_side, 1))


@dataclass(frozen=True)
class KeptPhoto:
    """A photo re-encoded to be stored: JPEG, upright, sRGB, no metadata, long side <= KEPT_LONG_SIDE."""

    jpeg: bytes
    original_size: tuple[int, int]  # width, height of the photo as sent, after orientation
    size: tuple[int, int]  # as stored
    metadata_removed: tuple[str, ...]


def keepable_photo(data: bytes, quality: int = 92, long_side: int = KEPT_LONG_SIDE) -> KeptPhoto:
    """Re-encode a photo a person asked us to keep, decoded no larger than it will be stored.

    The long side ends between 3/4 of `long_side` and `long_side`: a 4032 px phone photo decodes at
    half scale straight to 2016 px rather than whole (48 MB) and then shrunk."""
    result = _decode(data, lambda w, h: max(w, h) / max(long_side * 3 // 4, 1))
    pixels = result.image
    if max(pixels.size) > long_side:
        pixels.thumbnail((long_side, long_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    pixels = result.to_srgb(pixels)
    out = io.BytesIO()
    pixels.save(out, format="JPEG", quality=quality, optimize=True)  # no exif=, icc_profile=: none written
    return KeptPhoto(out.getvalue(), result.original_size, pixels.size, result.metadata_removed)


def clean_jpeg_bytes(data: bytes, quality: int = 92) -> bytes:
    """The stored form of a photo a person asked us to keep (see `keepable_photo`)."""
    return keepable_photo(data, quality).jpeg


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _decode(data: bytes, reduction: Callable[[int, int], float]) -> IntakeResult:
    """Decode `data` reduced by about `reduction(width, height)` (never enlarged), within MAX_DECODED_PIXELS.

    A JPEG is reduced while it is decoded (`draft`); other formats are decoded whole (their size was
    checked against MAX_DECODED_PIXELS from the header) and reduced at once, before anything else runs."""
    check_size(data)
    fmt = sniff_format(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt.upper()])
            width, height = image.size
            check_dimensions(width, height, fmt)
            orientation = image.getexif().get(0x0112, 1)
            found = metadata_found(image)
            factor = max(1.0, reduction(width, height))
            if fmt == "jpeg":
                # decode at 1/2, 1/4 or 1/8 scale straight from the DCT: most of a 12 MP decode avoided
                factor = max(factor, _fitting_jpeg_scale(width, height))
                image.draft("RGB", (max(1, int(width / factor)), max(1, int(height / factor))))
                if image.size[0] * image.size[1] > MAX_DECODED_PIXELS:  # draft impossible for this file
                    raise ImageRejected(
                        "too_large",
                        f"the photo is {width}x{height} px; at most {MAX_DECODED_PIXELS // 1_000_000} MP is "
                        "accepted for this kind of JPEG, so resize it",
                    )
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            "decompression_bomb",
            "the photo claims far more pixels than a camera makes; "
            f"at most {MAX_PIXELS // 1_000_000} MP is accepted",
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(
            "corrupt", f"the {fmt.upper()} file is damaged or incomplete ({_short(exc)}); send it again"
        ) from exc
    icc_profile = image.info.get("icc_profile") or None
    profile_name, icc_bytes = _usable_profile(icc_profile, image.mode)
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    del image  # from here on only one full-size copy is alive, and only until it is reduced
    left = int(min(rgb.size[0] * factor / width, rgb.size[1] * factor / height))
    if left >= 2:  # PNG and WebP, or a JPEG whose draft stopped short: an integer box reduction now
        rgb = rgb.reduce(left)
    scale = rgb.size[0] / width
    original = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    rgb.info.clear()  # EXIF (GPS!), XMP, comments and the profile stop here
    rgb.getexif().clear()
    return IntakeResult(
        image=rgb,
        format=fmt,
        original_size=original,
        scale=scale,
        icc="converted" if icc_bytes else "assumed_srgb",
        icc_profile_name=profile_name,
        metadata_removed=found,
        icc_profile=icc_bytes,
    )


def _fitting_jpeg_scale(width: int, height: int) -> int:
    """The smallest DCT scale (1, 2, 4 or 8) at which a JPEG decodes within MAX_DECODED_PIXELS."""
    for scale in (1, 2, 4):
        if -(-width // scale) * -(-height // scale) <= MAX_DECODED_PIXELS:
            return scale
    return 8


def metadata_found(image: Image.Image) -> tuple[str, ...]:
    """Name what the file carried that we drop, so the report can say e.g. that GPS was discarded."""
    exif = image.getexif()
    found: list[str] = []
    if len(exif):
        found.append("exif")
        if exif.get_ifd(0x8825):
            found.append("gps")
    for key, label in (
        ("xmp", "xmp"),
        ("XML:com.adobe.xmp", "xmp"),
        ("comment", "comment"),
        ("iptc", "iptc"),
    ):
        if key in image.info and label not in found:
            found.append(label)
    if any(k in image.info for k in ("Comment", "Description", "Author", "parameters")):
        found.append("text")
    return tuple(found)


def _usable_profile(profile: bytes | None, mode: str) -> tuple[str | None, bytes | None]:
    """Keep a profile only if LittleCMS can read it and it matches the pixels' colour space."""
    if not profile:
        return None, None
    try:
        parsed = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        space = parsed.profile.xcolor_space.strip()
        name = ImageCms.getProfileDescription(parsed).strip() or None
    except (OSError, ImageCms.PyCMSError):
        return None, None
    if space != "RGB" or mode not in ("RGB", "RGBA"):
        return name, None
    _transform_to_srgb(profile)  # fail here, not mid-analysis, if the profile cannot be applied
    return name, profile


@lru_cache(maxsize=16)
def _transform_to_srgb(profile: bytes) -> ImageCms.ImageCmsTransform:
    """Building a transform costs milliseconds; phones reuse a handful of profiles, so keep them."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "RGB", "RGB")


def photo_id(data: bytes) -> str:
    """A content hash for logs and caches that reveals nothing about the photo."""
    return "pho_" + hashlib.sha256(data).hexdigest()[:16]


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:80]
