"""Debian's Chromium driven by Playwright: how the end-to-end tests launch it and where screenshots go."""

from __future__ import annotations

from pathlib import Path

from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
playwright_api = sync_api  # installed by `make test`, like the browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]
