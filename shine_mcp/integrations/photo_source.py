"""How a photo argument becomes bytes: base64, a data URL, an upload id, an https URL (through the one
public-address-checked fetcher, `image_fetch`), or a file path (stdio only). Whether the bytes are a usable
photo is the analysis's call (`shine_mcp.models`), not this."""

from __future__ import annotations

import base64
import binascii
import re
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath
from typing import Literal
from urllib.parse import unquote, urlsplit

import anyio
from mcp.server.mcpserver.exceptions import ToolError

from shine_mcp.integrations.image_fetch import FetchRefused, ImageFetcher

ImageSource = Literal["base64", "data_url", "upload", "url", "path"]
# (user id, upload id) -> the uploaded bytes, or None when that user has no such upload
UploadLookup = Callable[[str, str], Awaitable[bytes | None]]

UPLOAD_ID = re.compile(r"upl_[A-Za-z0-9_-]{4,64}")
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,15}://")
WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
PHOTO_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".gif", ".tif", ".tiff", ".bmp"}
)
LONGEST_PATH = 4096
SHORTEST_PHOTO_CHARS = 32  # the smallest image files (a 1x1 GIF, 35 bytes) take 48 base64 characters
# Decoding base64 runs at ~450 MB/s: past this size it leaves the event loop (a 15 MB photo takes ~45 ms).
OFF_LOOP_CHARS = 64 * 1024
SEND_AS = (
    "pass the photo as base64 or a data URL (data:image/jpeg;base64,…), an upload id (upl_…) or an https URL"
)
_URLSAFE = str.maketrans("-_", "+/")
_LINE_BREAKS = str.maketrans("", "", "\r\n\t")


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def too_large(size: int, limit: int) -> ToolError:
    return ToolError(f"the photo is {_mb(size)}; at most {_mb(limit)} is accepted, so export a smaller JPEG")


def looks_like_path(text: str) -> bool:
    if len(text) > LONGEST_PATH or "\n" in text:
        return False
    if text.startswith("/9j/"):  # base64 of every JPEG starts so, like an absolute path
        return False
    if text.startswith(("/", "~", "./", "../", ".\\", "..\\", "\\\\")) or WINDOWS_DRIVE.match(text):
        return True
    return PurePath(text).suffix.lower() in PHOTO_SUFFIXES  # "photo.jpg": base64 has no "."


def classify(image: str) -> ImageSource:
    """Which kind of reference `image` is. Only the first characters decide, never a lookup."""
    text = image.strip()
    if text[:5].lower() == "data:":
        return "data_url"
    if UPLOAD_ID.fullmatch(text):
        return "upload"
    if URL_SCHEME.match(text):
        return "path" if text[:7].lower() == "file://" else "url"
    if looks_like_path(text):
        return "path"
    return "base64"


def decode_base64(text: str, limit: int) -> bytes:
    """Standard or URL-safe base64, with or without padding and line breaks (spaces are not base64:
    "my photo" is a sentence, not a tiny image). Each rewrite runs only when needed: a photo is megabytes."""
    compact = text.strip()
    if "\n" in compact or "\r" in compact or "\t" in compact:
        compact = compact.translate(_LINE_BREAKS)
    if not compact:
        raise ToolError(f"the image is empty; {SEND_AS}")
    if len(compact) < SHORTEST_PHOTO_CHARS:
        # an id or a word ("att_selfie01", "latest"), not the bytes of any image file
        raise ToolError(
            f"`image` is {compact[:40]!r}, which is neither a photo nor a reference Shine knows; {SEND_AS}"
        )
    estimated = len(compact) * 3 // 4
    if estimated > limit:
        raise too_large(estimated, limit)
    if "-" in compact or "_" in compact:
        compact = compact.translate(_URLSAFE)
    if len(compact) % 4:
        compact = compact.rstrip("=")
        compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ToolError(
            f"`image` is not valid base64 and not a data URL, upload id, https URL or file path; {SEND_AS}"
        ) from exc


def decode_data_url(text: str, limit: int) -> bytes:
    header, comma, payload = text.strip().partition(",")
    if not comma:
        raise ToolError(f"the data URL has no ',' before its data; {SEND_AS}")
    media, *params = (p.strip().lower() for p in header[5:].split(";"))
    if "base64" not in params:
        raise ToolError("only base64 data URLs are accepted: data:image/jpeg;base64,…")
    if media and not media.startswith("image/"):
        raise ToolError(f"the data URL says it holds {media}, not an image; send the photo itself")
    return decode_base64(unquote(payload) if "%" in payload else payload, limit)


def _local_path(text: str) -> Path:
    raw = unquote(urlsplit(text).path) if text[:7].lower() == "file://" else text
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def read_file(path: Path, limit: int) -> bytes:
    """Blocking: run in a worker thread. Regular files only (never a device that reads forever)."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{path} is a folder; give the path of the photo file in it")
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"{path} is not a regular file; give the path of a photo file")
        if info.st_size > limit:
            raise too_large(info.st_size, limit)
        with path.open("rb") as photo:
            data = photo.read(limit + 1)
    except FileNotFoundError as exc:
        raise ToolError(f"there is no file at {path}; check the path (a full path is safest)") from exc
    except PermissionError as exc:
        raise ToolError(
            f"Shine may not read {path} (permission denied); copy the photo somewhere readable"
        ) from exc
    except OSError as exc:
        raise ToolError(f"could not read {path} ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > limit:
        raise too_large(len(data), limit)
    return data


async def read_photo(
    image: str,
    *,
    user_id: str,
    transport: Literal["stdio", "http"],
    limit: int,
    fetcher: ImageFetcher,
    uploads: UploadLookup,
) -> tuple[ImageSource, bytes]:
    """The bytes `image` refers to, or a ToolError saying what to send instead. `user_id`: whose uploads
    an upload id names; `transport`: file paths are read only over stdio, on the person's own computer."""
    kind = classify(image)
    text = image.strip()
    if kind in ("data_url", "base64"):
        decode = decode_data_url if kind == "data_url" else decode_base64
        if len(text) <= OFF_LOOP_CHARS:
            return kind, decode(text, limit)
        return kind, await anyio.to_thread.run_sync(decode, text, limit)
    if kind == "upload":
        data = await uploads(user_id, text)
        if data is None:
            raise ToolError(
                f"unknown upload id {text!r}: it is not one of your uploads; upload the photo again, or pass "
                "it as base64, a data URL or an https URL"
            )
        if len(data) > limit:
            raise too_large(len(data), limit)
        return kind, data
    if kind == "url":
        try:
            return kind, await fetcher.fetch(text)
        except FetchRefused as exc:
            raise ToolError(exc.message) from exc
    if transport != "stdio":
        raise ToolError(
            "file paths only work when Shine runs on your own computer (over stdio); over the network, "
            + SEND_AS
        )
    return kind, await anyio.to_thread.run_sync(read_file, _local_path(text), limit)
