"""The colour of the light from a sheet of white paper or a grey card the shopper holds beside the face.

A known-neutral object lit by the same light as the face is a better colour reference than the whites of
the eyes (whose own colour varies from person to person, and which show on only about half the photos):
where one is found, it is used instead of them. It is looked for on a small copy of the whole frame,
outside the face: a large (at least 0.5 % of the frame), flat (paper grain, no pattern), uniform region,
not clipped and not black, whose colour is that of a plausible light (between a 3000 K lamp and a
12000 K sky, near the line of blackbody lights).

Near-neutral walls, clothes and cardboard pass those tests too. A card is held, so a region that runs
off an edge of the frame, covers more than a fifth of it, or whose middle is not beside the face (above
it: a wall; below it: clothes) is taken for the background (on
the outside faces without a card, 8 of 87 photos took a wall, a white suit or a sky for one before this
rule). And a region is taken for a reference only when its colour is consistent with the face (false
negatives preferred to false positives):

- the skin, divided by the region's colour, must be skin under daylight (CIELAB hue 30-85 degrees,
  some chroma). The quotient does not depend on the light (both are lit by it), so a beige card, a
  cream wall or a blue-grey shirt, whose own colour the quotient takes out of the skin, fails it;
- where the whites of the eyes show the light (SCLERA_FULL_PIXELS or more), the region must show the
  same light within REFERENCE_AGREEMENT: a wall lit by a window while the face is lit by a lamp, or a
  coloured wall under a neutral light, is not taken for a card;
- white paper is brighter than the skin beside it; a darker neutral region is taken for a grey card
  only if at least GREY_MIN_BRIGHTNESS of the skin's brightness (a shadowed wall is darker).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from .colour import lab_to_linear, linear_to_lab, srgb_to_linear
from .illuminant import SCLERA_FULL_PIXELS, Illuminant

Box = tuple[float, float, float, float]

SAMPLE_SIDE = 192  # px, long side of the copy looked at: a card of 0.5 % of the frame is ~10 x 10 px
BLOCK = 4  # px of the copy: flatness and colour are judged per block of BLOCK x BLOCK
MIN_AREA = 0.005  # share of the frame
# A card is held, whole in the picture: it runs off no edge of the frame and covers at most this share of it.
# Walls, sky and clothes behind or below the face run off two or more edges, or fill the frame.
MAX_AREA = 0.2
MAX_EDGES_TOUCHED = 0
FACE_MARGIN = 0.2  # face widths around the face's box where no card is looked for (hair, ears, neck)
MAX_BLOCK_GRAIN = 0.05  # sd over mean of the green channel inside a block: paper grain and JPEG noise
MAX_LINEAR = 0.9  # any channel brighter (sRGB ~243) may be clipped, and clipped white has no colour
# linear (sRGB ~89): a darker region is more likely a shadowed wall or a dark background than a card held
# to the light (an 18 % grey card in a well-exposed photo measures 0.15-0.2, white paper 0.5-0.9)
MIN_GREEN = 0.1
# Lights the card may show, as log red/blue against daylight (CORRECTABLE_RED_OVER_BLUE widened: a card
# showing a light beyond it still tells the light gate so) and "tint", log(red) + log(blue) - 2 log(green):
# blackbody lights from 3000 K to 10000 K measure -0.19 to +0.21 against daylight.
LIGHT_LOG_RED_OVER_BLUE = (math.log(0.3), math.log(8.0))
MAX_TINT = 0.4
UNIFORM = 0.06  # log units: a block belongs to the card if this close to the card's median colour
MIN_UNIFORM_SHARE = 0.8  # of a connected region's blocks
# The skin divided by the reference's colour, in CIELAB: skin under daylight is at hue ~40-70 degrees;
# a card that is not neutral moves it out (a beige card, L* 80 b* +18: to 8 and -81 degrees on two faces).
CORRECTED_SKIN_HUE = (30.0, 85.0)
CORRECTED_SKIN_MIN_CHROMA = 3.0
# Log red/blue units between the light the card shows and the one the whites of the eyes show, beyond
# which the card is not believed: the sclera's colour varies by +-5 %, a paper's by +-5 %, plus noise. At
# 0.25 a warm beige background 0.22 off the eyes' light was taken for a grey card (insightface-t1#6).
REFERENCE_AGREEMENT = 0.2
GREY_MIN_BRIGHTNESS = 0.35
# A white paper is assumed neutral within +-4 b* (copy paper with optical brighteners, slightly blue, to
# cream), about +-5 % on the red/blue gains; a photographic grey card is neutral within +-2 %, taken as
# +-3 % for the light's fall-off across a hand-held card.
WHITE_PAPER_UNCERTAINTY = 0.05
GREY_CARD_UNCERTAINTY = 0.03

_TO_LINEAR = np.asarray(
    srgb_to_linear(np.arange(256) / 255.0), dtype=np.float32
)  # uint8 sRGB code -> linear, by lookup


def _blocks(
    image: Image.Image, to_srgb: Callable[[Image.Image], Image.Image]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-block mean linear RGB and green grain of a small sRGB copy of `image`, and the copy's scale."""
    factor = max(1, max(image.size) // SAMPLE_SIDE)
    small = to_srgb(image.reduce(factor) if factor > 1 else image)
    codes = np.asarray(small if small.mode == "RGB" else small.convert("RGB"))
    rows, cols = codes.shape[0] // BLOCK, codes.shape[1] // BLOCK
    codes = codes[: rows * BLOCK, : cols * BLOCK]
    # blocks as (rows, cols, BLOCK * BLOCK pixels, channel): reductions over one contiguous axis are quick
    tiles = _TO_LINEAR[codes.reshape(rows, BLOCK, cols, BLOCK, 3).swapaxes(1, 2).reshape(rows, cols, -1, 3)]
    mean = tiles.mean(axis=2)
    grain = tiles[..., 1].std(axis=2) / np.maximum(mean[..., 1], 1e-4)
    peak = tiles.max(axis=(2, 3))
    grain = np.where(peak > MAX_LINEAR, np.inf, grain)  # a clipped pixel anywhere disqualifies the block
    return mean, grain, small.width / image.width


def _components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """4-connected regions of True cells."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        stack, cells = [start], []
        while stack:
            r, c = stack.pop()
            cells.append((int(r), int(c)))
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < mask.shape[0] and 0 <= nc < mask.shape[1] and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    stack.append((nr, nc))
        out.append(cells)
    return out


def find(
    image: Image.Image,
    face_box: Box,
    skin_lab: tuple[float, float, float],
    sclera: Illuminant,
    to_srgb: Callable[[Image.Image], Image.Image] = lambda image: image,
) -> Illuminant | None:
    """The light seen on a white paper or grey card held in `image` (`face_box` in its pixels), or None.

    `skin_lab` is the face's measured skin colour, `sclera` the light the whites of the eyes showed;
    `to_srgb` converts a copy of `image` from its colour profile."""
    mean, grain, scale = _blocks(image, to_srgb)
    rows, cols = grain.shape
    if rows == 0 or cols == 0:
        return None
    safe = np.maximum(mean, 1e-5)
    log_rg = np.log(safe[..., 0] / safe[..., 1])
    log_bg = np.log(safe[..., 2] / safe[..., 1])
    red_over_blue = log_rg - log_bg
    tint = log_rg + log_bg
    candidate = (
        (grain <= MAX_BLOCK_GRAIN)
        & (mean[..., 1] >= MIN_GREEN)
        & (red_over_blue > LIGHT_LOG_RED_OVER_BLUE[0])
        & (red_over_blue < LIGHT_LOG_RED_OVER_BLUE[1])
        & (np.abs(tint) <= MAX_TINT)
    )
    x, y, w, h = (v * scale / BLOCK for v in face_box)
    margin = FACE_MARGIN * w
    r0, r1 = max(0, math.floor(y - margin)), min(rows, math.ceil(y + h + margin))
    c0, c1 = max(0, math.floor(x - margin)), min(cols, math.ceil(x + w + margin))
    candidate[r0:r1, c0:c1] = False
    min_blocks = MIN_AREA * rows * cols
    skin = np.asarray(lab_to_linear(np.array(skin_lab)))
    best: Illuminant | None = None
    best_size = 0
    for cells in _components(candidate):
        if len(cells) < min_blocks or len(cells) <= best_size or len(cells) > MAX_AREA * rows * cols:
            continue
        if _edges_touched(cells, rows, cols) > MAX_EDGES_TOUCHED:
            continue
        middle = sum(cell[0] for cell in cells) / len(cells)
        if not y <= middle <= y + h:  # beside the face, not above it (a wall) or below it (clothes)
            continue
        idx = tuple(np.array(cells).T)
        rg, bg = np.median(log_rg[idx]), np.median(log_bg[idx])
        uniform = (np.abs(log_rg[idx] - rg) <= UNIFORM) & (np.abs(log_bg[idx] - bg) <= UNIFORM)
        if uniform.mean() < MIN_UNIFORM_SHARE or uniform.sum() < min_blocks:
            continue
        colour = np.median(mean[idx][uniform], axis=0)
        light = _believed(colour, skin, sclera, int(uniform.sum()))
        if light is not None:
            best, best_size = light, len(cells)
    return best


def _edges_touched(cells: list[tuple[int, int]], rows: int, cols: int) -> int:
    """How many of the frame's four edges a region reaches."""
    r = [cell[0] for cell in cells]
    c = [cell[1] for cell in cells]
    return (min(r) == 0) + (max(r) == rows - 1) + (min(c) == 0) + (max(c) == cols - 1)


def _believed(colour: np.ndarray, skin: np.ndarray, sclera: Illuminant, blocks: int) -> Illuminant | None:
    """The light `colour` shows if it is a neutral reference consistent with the face, else None."""
    gains = colour / colour[1]
    corrected = np.asarray(linear_to_lab(np.clip(skin / gains, 0.0, None)))
    chroma = math.hypot(corrected[1], corrected[2])
    hue = math.degrees(math.atan2(corrected[2], corrected[1]))
    if chroma < CORRECTED_SKIN_MIN_CHROMA or not CORRECTED_SKIN_HUE[0] <= hue <= CORRECTED_SKIN_HUE[1]:
        return None
    if sclera.found and sclera.pixels >= SCLERA_FULL_PIXELS and sclera.measured is not None:
        seen = math.log(sclera.measured[0] / sclera.measured[2])
        if abs(math.log(gains[0] / gains[2]) - seen) > REFERENCE_AGREEMENT:
            return None
    if colour[1] > skin[1]:
        source, uncertainty = "white_paper", WHITE_PAPER_UNCERTAINTY
    elif colour[1] >= GREY_MIN_BRIGHTNESS * skin[1]:
        source, uncertainty = "grey_card", GREY_CARD_UNCERTAINTY
    else:
        return None
    triple = (float(gains[0]), 1.0, float(gains[2]))
    return Illuminant(source, triple, blocks * BLOCK * BLOCK, triple, uncertainty, pixels_corrected=True)


def corrected(rgb: np.ndarray, light: Illuminant) -> np.ndarray:
    """sRGB codes `rgb` (uint8 [H, W, 3]) as they would be under daylight: divided by the light's gains in
    linear light (von Kries). Measured on these, which skin pixels are highlights or shadow is judged as
    under daylight: under a 8000 K cast the forehead's brightest skin read as near-white highlights and was
    left out (2082 -> 258 pixels on faceapi-1#3), darkening the skin's L* by 7 and ITA by 17 degrees."""
    linear = np.asarray(srgb_to_linear(rgb.astype(np.float64) / 255.0)) / np.array(light.gains)
    linear = np.clip(linear, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    out = np.round(srgb * 255.0)
    clipped = (rgb >= 255).any(axis=-1)
    out[clipped] = rgb[clipped]  # a clipped pixel is left as it was: it has no colour, and stays clipped
    return np.asarray(out, dtype=np.uint8)
