"""Drawn faces the analysis must refuse: line-art faces from a registry package (OpenMoji, listed under
`drawings` in manifest.json and fetched into the cache with the photos) and faces drawn here with Pillow
(flat fills and outlines, in several skin colours, with and without a shaded fill).

The detector takes all of them for faces; none of them is skin.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFilter

from scripts import fetch_validation_faces as fetcher

BACKGROUND = "#d8d4cc"
SIZE = 720


@dataclass(frozen=True)
class Drawing:
    id: str
    image: Image.Image


@cache
def package_drawings() -> tuple[Drawing, ...]:
    """The manifest's OpenMoji faces rasterised at SIZE px on a plain background (resvg)."""
    import resvg_py

    cache_dir = fetcher.fetch()
    out = []
    for entry in fetcher.manifest().get("drawings", []):
        path = fetcher.photo_path(entry, cache_dir)
        png = resvg_py.svg_to_bytes(svg_path=str(path), width=SIZE, height=SIZE, background=BACKGROUND)
        out.append(Drawing(entry["id"], Image.open(io.BytesIO(bytes(png))).convert("RGB")))
    return tuple(out)


def drawn_face(
    skin: tuple[int, int, int] = (224, 180, 150),
    hair: tuple[int, int, int] = (60, 40, 30),
    background: tuple[int, int, int] = (200, 215, 230),
    shaded: bool = False,
    soft: bool = False,
    size: int = SIZE,
) -> Image.Image:
    """A cartoon face: a flat skin-coloured oval with a dark outline, eyes, brows, a nose line, lips and
    hair. `shaded` adds a darker flat fill on the lower face (cel shading); `soft` blurs the drawing a
    little, as a photo of a screen or a resized image would."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    k = size / 720
    outline = (40, 30, 30)

    def at(*values: float) -> tuple[float, ...]:
        return tuple(v * k for v in values)

    draw.ellipse(at(220, 90, 500, 250), fill=hair)
    draw.rectangle(at(300, 520, 420, 640), fill=skin, outline=outline, width=round(4 * k))
    draw.ellipse(at(230, 130, 490, 560), fill=skin, outline=outline, width=round(5 * k))
    if shaded:
        draw.ellipse(at(250, 420, 470, 560), fill=tuple(round(c * 0.88) for c in skin))
    for left in (214, 474):
        draw.ellipse(at(left, 300, left + 32, 380), fill=skin, outline=outline, width=round(3 * k))
    for cx in (305, 415):
        draw.ellipse(
            at(cx - 32, 300, cx + 32, 336), fill=(250, 250, 250), outline=outline, width=round(3 * k)
        )
        draw.ellipse(at(cx - 13, 305, cx + 13, 331), fill=(70, 50, 35))
        draw.ellipse(at(cx - 6, 312, cx + 6, 324), fill=(10, 10, 10))
        draw.line(at(cx - 38, 276, cx + 38, 270), fill=hair, width=round(9 * k))
    draw.line(at(360, 340, 350, 420, 372, 424), fill=outline, width=round(4 * k))
    draw.chord(at(315, 455, 405, 500), 0, 180, fill=(180, 70, 80), outline=outline, width=round(3 * k))
    return image.filter(ImageFilter.GaussianBlur(1.2 * k)) if soft else image


def pillow_drawings() -> tuple[Drawing, ...]:
    """Drawn faces across skin colours, fills and sizes."""
    skins = {
        "light": (245, 225, 205),
        "medium": (224, 180, 150),
        "brown": (150, 100, 70),
        "dark": (90, 60, 45),
    }
    out = [Drawing(f"pillow-{name}", drawn_face(skin)) for name, skin in skins.items()]
    out.append(Drawing("pillow-shaded", drawn_face(shaded=True)))
    out.append(Drawing("pillow-soft", drawn_face(soft=True)))
    out.append(Drawing("pillow-small", drawn_face(size=480)))
    return tuple(out)
