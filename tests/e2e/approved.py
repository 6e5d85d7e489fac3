"""Screenshots compared against approved ones (`tests/e2e/approved/*.png`), so a layout break fails the
run. Two images match when the mean absolute difference per channel is at most `MAX_MEAN` (0-255) and the
share of pixels that differ by more than `PIXEL_STEP` in any channel is at most `MAX_CHANGED`: enough to
absorb anti-aliasing jitter between runs, far too little for a missing header or a moved panel.
`SHINE_APPROVE_SCREENSHOTS=1` rewrites the approved images instead (look at them before committing)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.e2e.browser import ARTIFACTS

APPROVED = Path(__file__).parent / "approved"
MAX_MEAN = 1.0
PIXEL_STEP = 24
MAX_CHANGED = 0.004


@dataclass(frozen=True)
class Difference:
    mean: float  # mean absolute difference per channel, 0-255
    changed: float  # share of pixels with a channel off by more than PIXEL_STEP

    @property
    def small(self) -> bool:
        return self.mean <= MAX_MEAN and self.changed <= MAX_CHANGED


def difference(png: bytes, approved: Path) -> Difference:
    now = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    then = np.asarray(Image.open(approved).convert("RGB"), dtype=np.int16)
    if now.shape != then.shape:
        return Difference(255.0, 1.0)
    delta = np.abs(now - then)
    return Difference(float(delta.mean()), float((delta.max(axis=2) > PIXEL_STEP).mean()))


def screen(page: object, name: str, mask: list[object] | None = None) -> bytes:
    """The page as a person sees it now, animations finished and masked parts (ids) boxed; also kept
    in test-artifacts/ to look at."""
    png: bytes = page.screenshot(  # type: ignore[attr-defined]
        full_page=False, animations="disabled", caret="hide", mask=mask or []
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.png").write_bytes(png)
    return png


def differs_from_approved(page: object, name: str, mask: list[object] | None = None) -> str | None:
    """None when the screen matches its approved image (or was just approved), else what differs."""
    png = screen(page, name, mask)
    approved = APPROVED / f"{name}.png"
    if os.environ.get("SHINE_APPROVE_SCREENSHOTS") == "1":
        APPROVED.mkdir(exist_ok=True)
        approved.write_bytes(png)
        return None
    if not approved.exists():
        return f"{name}: no approved image; run with SHINE_APPROVE_SCREENSHOTS=1 and look at {approved}"
    found = difference(png, approved)
    if found.small:
        return None
    return f"{name}: mean difference {found.mean:.2f}/255, {found.changed:.2%} of pixels changed"
