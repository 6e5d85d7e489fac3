"""Memory stays bounded whatever arrives at once: decompression-bomb photos are refused from their header,
accepted photos are decoded no larger than needed and one per core at a time (uploads share the analysis
limiter), and oversized bodies are refused while they stream in.

The slow test runs `shine serve` in a subprocess and reads its peak resident memory (VmHWM) from /proc."""

from __future__ import annotations

import io
import os
import select
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import anyio
import httpx
import pytest
from PIL import Image

from shine_mcp.config import Settings
from shine_mcp.services import Services
from tests.support.postgres import free_port
from tests.test_body_limits import BOUNDARY, Client, post, running

MIB = 1024 * 1024
BOMB_SIDE = 7990  # 63.8 MP: just under the 64 MP cap every format used to share


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


@cache
def png_bomb() -> bytes:
    """A complete, valid 7990x7990 RGB PNG of black pixels: ~190 KB that decodes to ~190 MB."""
    header = BOMB_SIDE.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * BOMB_SIDE)
    idat = b"".join(packer.compress(row) for _ in range(BOMB_SIDE)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


@cache
def huge_jpeg() -> bytes:
    """A real 7990x7990 JPEG (63.8 MP, accepted): decoded at full size it would hold ~190 MB."""
    out = io.BytesIO()
    Image.new("RGB", (BOMB_SIDE, BOMB_SIDE), (200, 160, 140)).save(out, format="JPEG", quality=80)
    return out.getvalue()


def multipart(data: bytes, name: str, mime: str) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="{name}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


# --- the upload path shares the analysis limiter ---------------------------------------------------------
async def test_uploads_wait_for_the_analysis_limiter(settings: Settings) -> None:
    """An upload is decoded in turn with the analyses: while every decode slot is taken, it waits."""
    services = Services(settings.model_copy(update={"fulfilment_worker": False}))
    limiter = services.analysis_limiter
    photo = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 160, 140)).save(photo, format="JPEG")
    body = multipart(photo.getvalue(), "me.jpg", "image/jpeg")
    async with running(services.settings, services) as app:
        holders = [object() for _ in range(int(limiter.total_tokens))]
        for holder in holders:
            await limiter.acquire_on_behalf_of(holder)
        client = Client(first=body, total=len(body))
        async with anyio.create_task_group() as group:
            group.start_soon(post, app, "/api/uploads", f"multipart/form-data; boundary={BOUNDARY}", client)
            with anyio.fail_after(5):
                while limiter.statistics().tasks_waiting == 0:
                    await anyio.wait_all_tasks_blocked()
            assert client.status is None  # the upload is parked on the limiter, not decoding
            for holder in holders:
                limiter.release_on_behalf_of(holder)
    assert client.status == 201


# --- the whole server under a burst ----------------------------------------------------------------------
def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (not Linux?)")


@contextmanager
def shine_serve(data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data_dir),
        "SHINE_DATA_DIR": str(data_dir),
        "SHINE_HOST": "127.0.0.1",
        "SHINE_PORT": str(port),
        "SHINE_LOG_LEVEL": "WARNING",
        "SHINE_RATE_LIMIT_IP": "0",
        "SHINE_RATE_LIMIT_USER": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shine_cli.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "shine serve exited during start-up"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "shine serve did not answer /healthz within 60 s"
                select.select([], [], [], 0.1)  # not listening yet: ask again shortly
        yield process, url
    finally:
        process.terminate()
        process.wait(30)


def flood_webhook(port: int, total: int, results: list[str]) -> None:
    """A chunked POST to /stripe/webhook that would go on for `total` bytes; stops when the server answers."""
    chunk = b"\0" * MIB
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST /stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(framed)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what it said is read below
        sock.settimeout(60)
        try:
            results.append(sock.recv(200).decode("latin-1").split("\r\n")[0])
        except (ConnectionResetError, TimeoutError) as exc:
            results.append(type(exc).__name__)


@pytest.mark.slow
def test_bombs_and_oversized_bodies_at_once_stay_under_300_mib(settings: Settings, tmp_path: Path) -> None:
    bomb, jpeg = png_bomb(), huge_jpeg()
    with shine_serve(tmp_path) as (process, url):
        port = int(url.rsplit(":", 1)[1])
        with httpx.Client(base_url=url, timeout=60) as client:  # warm up: imports, first decode, first event
            small = io.BytesIO()
            Image.new("RGB", (640, 480), (200, 160, 140)).save(small, format="JPEG")
            assert (
                client.post("/api/uploads", files={"photo": ("a.jpg", small.getvalue())}).status_code == 201
            )
            assert client.post("/stripe/webhook", content=b"{}").status_code in (400, 503)
        before = peak_rss_mib(process.pid)

        uploads: list[httpx.Response] = []
        floods: list[str] = []

        def upload(data: bytes, name: str) -> None:
            with httpx.Client(base_url=url, timeout=120) as client:
                uploads.append(client.post("/api/uploads", files={"photo": (name, data)}))

        threads = [threading.Thread(target=upload, args=(bomb, "bomb.png")) for _ in range(8)]
        threads += [threading.Thread(target=upload, args=(jpeg, "huge.jpg")) for _ in range(4)]
        threads += [threading.Thread(target=flood_webhook, args=(port, 300 * MIB, floods)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        after = peak_rss_mib(process.pid)

    refused = [r for r in uploads if r.status_code == 400]
    assert len(refused) == 8 and all(r.json()["error"] == "too_large" for r in refused)
    assert sorted(r.status_code for r in uploads) == [201] * 4 + [400] * 8
    assert len(floods) == 8 and all(f.startswith("HTTP/1.1 413") for f in floods), floods
    assert after - before < 300, f"peak RSS grew by {after - before:.0f} MiB ({before:.0f} -> {after:.0f})"
