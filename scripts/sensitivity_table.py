"""Regenerate the sensitivity table in docs/analysis.md: how each metric moves when the photo changes.

Each row perturbs the bundled Grace Hopper portrait (exposure, white balance, JPEG quality, blur)
and shows the change of each metric against the unperturbed photo, or "withheld" when a gate
stopped it. Run: `.venv/bin/python scripts/sensitivity_table.py` (rewrites the table in place).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shine_mcp.models import Analysis, analyze  # noqa: E402

DOC = ROOT / "docs" / "analysis.md"
BEGIN, END = "<!-- sensitivity:begin -->", "<!-- sensitivity:end -->"
COLUMNS = ("lab_l", "lab_a", "lab_b", "ita", "redness", "shine", "tone_unevenness", "texture", "dark_spots")


def to_linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def to_srgb(linear: np.ndarray) -> Image.Image:
    linear = np.clip(linear, 0.0, 1.0)
    out = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return Image.fromarray((out * 255).round().astype(np.uint8))


def exposure(factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: to_srgb(to_linear(np.asarray(im) / 255.0) * factor)


def white_balance(shift: float) -> Callable[[Image.Image], Image.Image]:
    """Warmer (+) or cooler (-): red gain up and blue gain down by `shift`, in linear light."""
    gains = np.array([1 + shift, 1.0, 1 - shift])
    return lambda im: to_srgb(to_linear(np.asarray(im) / 255.0) * gains)


def blur(radius: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.filter(ImageFilter.GaussianBlur(radius))


def jpeg(image: Image.Image, quality: int = 95) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def cell(base: Analysis, other: Analysis, name: str) -> str:
    before, after = base.metric(name).value, other.metric(name).value  # type: ignore[arg-type]
    if after is None:
        return "withheld (" + ", ".join(other.metric(name).limited_by) + ")"  # type: ignore[arg-type]
    if before is None:
        return f"{after:.2f}"
    return f"{after - before:+.2f}"


def main() -> int:
    import matplotlib

    photo = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    base = analyze(jpeg(photo))
    rows: list[tuple[str, bytes]] = []
    for f in (0.8, 0.9, 1.1, 1.2):
        rows.append((f"exposure {f - 1:+.0%}", jpeg(exposure(f)(photo))))
    for s in (-0.05, 0.05):
        rows.append((f"white balance {s:+.0%} (warmer = +)", jpeg(white_balance(s)(photo))))
    for q in (50, 75, 85):
        rows.append((f"JPEG quality {q}", jpeg(photo, q)))
    for r in (0.5, 1.0, 2.0):
        rows.append((f"Gaussian blur {r} px", jpeg(blur(r)(photo))))
    header = "| change | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    lines.append(
        "| baseline value (JPEG q95) | " + " | ".join(f"{base.metric(c).value}" for c in COLUMNS) + " |"
    )  # type: ignore[arg-type]
    for label, data in rows:
        other = analyze(data)
        lines.append(f"| {label} | " + " | ".join(cell(base, other, c) for c in COLUMNS) + " |")
    table = "\n".join(lines)
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
