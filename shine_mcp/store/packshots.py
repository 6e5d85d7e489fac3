"""Shine's drawn packshots: a licence-clean picture for a product whose catalog entry has none.

A pure function of the product's brand, name and category: a bottle, pump, dropper, jar, tube or compact
drawn per category, in a colour derived from the brand (hue) and the product (shade), with the brand's
name on the label as real text. The drawing is an SVG of a few kilobytes, served by the web shell and
never stored; its version (a hash of what it is drawn from) goes in the URL, so it can be cached for good.
What a merchant's own picture looks like, and when it is used instead, lives in `store.views`.
"""

from __future__ import annotations

import colorsys
import hashlib
import html
import re
from dataclasses import dataclass
from typing import Protocol

STYLE = "1"  # bump when the drawing changes, so cached copies are replaced
SIZE = 480  # the intrinsic width and height in CSS px: sharp on a 2x card, scales cleanly (vector) above
MAX_BYTES = 8 * 1024  # what a packshot may weigh at most, with the longest names the catalog allows
PATH_PREFIX = "/images/products/"
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"


class Drawable(Protocol):
    """What a packshot is drawn from (a `Product`, a `ProductRow` or anything with these fields)."""

    @property
    def id(self) -> str: ...
    @property
    def brand(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class Shape:
    """One pack: the parts in the cap colour, the body (in the body colour) and where the label sits."""

    caps: tuple[str, ...]  # SVG elements without fill
    body: str  # one SVG element without fill
    body_box: Box  # the body's bounding box, for the highlight
    label: Box


def _rect(x: float, y: float, w: float, h: float, r: float) -> str:
    return f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{r:g}"/>'


# Each pack stands on the same floor (y = 430) in the middle of a 480 x 480 canvas.
SHAPES: dict[str, Shape] = {
    "cleanser": Shape(  # a pump bottle
        caps=(
            _rect(232, 112, 16, 46, 3),
            _rect(204, 96, 72, 22, 7),
            _rect(272, 100, 52, 12, 5),
            _rect(214, 150, 52, 28, 6),
        ),
        body=_rect(168, 172, 144, 258, 26),
        body_box=Box(168, 172, 144, 258),
        label=Box(180, 240, 120, 120),
    ),
    "toner": Shape(  # a tall bottle with a screw cap
        caps=(_rect(206, 66, 68, 56, 9),),
        body=_rect(174, 118, 132, 312, 34),
        body_box=Box(174, 118, 132, 312),
        label=Box(184, 220, 112, 130),
    ),
    "serum": Shape(  # a dropper bottle
        caps=(_rect(222, 96, 36, 92, 18), _rect(208, 176, 64, 44, 8)),
        body=_rect(180, 214, 120, 216, 22),
        body_box=Box(180, 214, 120, 216),
        label=Box(190, 270, 100, 110),
    ),
    "moisturiser": Shape(  # a jar
        caps=(_rect(118, 206, 244, 66, 16),),
        body=_rect(128, 264, 224, 166, 26),
        body_box=Box(128, 264, 224, 166),
        label=Box(148, 292, 184, 104),
    ),
    "mask": Shape(  # a wide, low tub
        caps=(_rect(96, 250, 288, 56, 14),),
        body=_rect(106, 298, 268, 132, 22),
        body_box=Box(106, 298, 268, 132),
        label=Box(128, 318, 224, 92),
    ),
    "sunscreen": Shape(  # a tube standing on its cap
        caps=(_rect(200, 376, 80, 54, 10), _rect(158, 70, 164, 22, 4)),
        body='<path d="M164 88H316L292 382H188Z"/>',
        body_box=Box(164, 88, 152, 294),
        label=Box(182, 170, 116, 130),
    ),
    "eye_care": Shape(  # a slim tube
        caps=(_rect(212, 380, 56, 50, 8), _rect(184, 132, 112, 18, 4)),
        body='<path d="M188 146H292L276 386H204Z"/>',
        body_box=Box(188, 146, 104, 240),
        label=Box(198, 200, 84, 120),
    ),
    "exfoliant": Shape(  # a bottle with a flip-top cap
        caps=(_rect(198, 104, 84, 64, 12),),
        body=_rect(170, 160, 140, 270, 28),
        body_box=Box(170, 160, 140, 270),
        label=Box(182, 230, 116, 124),
    ),
    "spot_treatment": Shape(  # a round compact of patches
        caps=(_rect(126, 282, 228, 30, 15),),
        body=_rect(120, 306, 240, 124, 40),
        body_box=Box(120, 306, 240, 124),
        label=Box(146, 326, 188, 84),
    ),
}
_DEFAULT_SHAPE = "moisturiser"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _hex(h: float, lightness: float, saturation: float) -> str:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


@dataclass(frozen=True, slots=True)
class Palette:
    background: str
    body: str
    cap: str
    ink: str  # label text: dark enough on white for 4.5:1 whatever the hue


def palette(brand: str, product_key: str) -> Palette:
    """The brand decides the hue, so a brand's packs look like one range; the product nudges the shade."""
    hue = int.from_bytes(_digest(brand.strip().lower())[:2], "big") / 65536
    shade = _digest(product_key)
    hue += (shade[0] / 255 - 0.5) * 0.06
    lightness = 0.56 + shade[1] / 255 * 0.16
    saturation = 0.32 + shade[2] / 255 * 0.3
    return Palette(
        background=_hex(hue, 0.95, 0.35),
        body=_hex(hue, lightness, saturation),
        cap=_hex(hue, 0.3, saturation),
        ink=_hex(hue, 0.2, 0.45),
    )


def version(product: Drawable) -> str:
    """Changes exactly when the drawing would: the URL carries it, so a cached copy is never stale."""
    key = "\n".join((STYLE, product.id, product.brand, product.name, product.category))
    return _digest(key).hex()[:12]


def packshot_path(product: Drawable) -> str:
    return f"{PATH_PREFIX}{product.id}.svg?v={version(product)}"


def _clean(text: str, limit: int) -> str:
    """Text as it may appear in the SVG: no characters XML forbids, one line, at most `limit` characters,
    escaped (a brand called `<b>&co` is drawn as those characters, never read as markup)."""
    flat = " ".join(_XML_UNSAFE.sub("", text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return html.escape(flat, quote=True)


def _fitted_text(raw: str, limit: int, box: Box, y: float, size: float, *, weight: str, ink: str) -> str:
    shown = " ".join(_XML_UNSAFE.sub("", raw).split())[:limit]
    # About 0.62 em per character in a sans-serif: text wider than the label is squeezed to fit it.
    room = box.w - 12
    squeeze = (
        f' textLength="{room:g}" lengthAdjust="spacingAndGlyphs"' if len(shown) * size * 0.62 > room else ""
    )
    return (
        f'<text x="{box.x + box.w / 2:g}" y="{y:g}" font-size="{size:g}" font-weight="{weight}" '
        f'fill="{ink}" text-anchor="middle"{squeeze}>{_clean(raw, limit)}</text>'
    )


def _name_lines(name: str, per_line: int) -> list[str]:
    words, lines, line = name.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
    return [line for line in lines if line]


def packshot_svg(product: Drawable) -> str:
    """The product's packshot as a standalone SVG document (`SIZE` x `SIZE`)."""
    shape = SHAPES.get(product.category, SHAPES[_DEFAULT_SHAPE])
    colours = palette(product.brand, f"{product.id}\n{product.name}")
    label, body = shape.label, shape.body_box
    brand_size = 22 if label.w >= 110 else 17
    name_size = brand_size * 0.68
    per_line = max(8, int(label.w / (name_size * 0.55)))
    name_lines = _name_lines(" ".join(_XML_UNSAFE.sub("", product.name).split()), per_line)
    top = label.y + label.h / 2 - (brand_size + len(name_lines) * name_size * 1.2) / 2 + brand_size * 0.8
    texts = [_fitted_text(product.brand.upper(), 24, label, top, brand_size, weight="700", ink=colours.ink)]
    for index, line in enumerate(name_lines):
        y = top + brand_size * 0.5 + (index + 1) * name_size * 1.2
        texts.append(_fitted_text(line, per_line + 2, label, y, name_size, weight="400", ink=colours.ink))
    title = _clean(f"Illustration of {product.brand} {product.name}", 200)
    highlight = _rect(body.x + 12, body.y + 18, 10, max(body.h - 44, 20), 5)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" '
        f'viewBox="0 0 {SIZE} {SIZE}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect width="{SIZE}" height="{SIZE}" fill="{colours.background}"/>'
        f'<ellipse cx="240" cy="432" rx="150" ry="12" fill="#000" fill-opacity=".08"/>'
        f'<g fill="{colours.cap}">{"".join(shape.caps)}</g>'
        f'<g fill="{colours.body}">{shape.body}</g>'
        f'<g fill="#fff" fill-opacity=".3">{highlight}</g>'
        f'<g fill="#fff" fill-opacity=".93">{_rect(label.x, label.y, label.w, label.h, 8)}</g>'
        f'<g font-family="{_FONT}">{"".join(texts)}</g>'
        "</svg>"
    )
