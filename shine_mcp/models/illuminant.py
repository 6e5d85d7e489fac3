"""The colour of the light on the face, estimated from the whites of the eyes when the photo shows them.

Skin colour in a photo is the skin's times the light's: without something of known colour in the frame
the two cannot be told apart, so ITA is reported as a wide range. The sclera is such a reference on every
face: bright, nearly neutral, lit by the same light as the cheeks. Where enough of it shows (eyes open,
in focus, not clipped) its colour gives the light's red and blue gains (von Kries, in linear sRGB), the
skin's colour is corrected by them and the ITA range narrows; where it does not, the range stays wide.
A white paper or grey card held beside the face (`reference_card.py`) is a better reference and wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .colour import lab_to_linear, linear_to_lab
from .regions import EYE_DISTANCE, FaceCrop

# Where the whites of the eyes are looked for, in eye distances around each eye keypoint: half width,
# half height. The keypoint is the eye's centre; the eye opening is ~0.35 eye distances wide. The window
# is taller than the opening, because the keypoint lands a few crop pixels higher or lower from one
# copy of the same photo to the next (re-crop, mirror, tilt, re-compression): 0.09 eye distances (7 px)
# caught the sclera in one copy and missed it in the next, and turning the correction on and off moved
# the reported ITA by up to 8 degrees (RMS over the validation set's same-photo variants 1.88 with a
# window 0.09 tall, 1.61 at 0.16, 1.49 with SCLERA_FULL_PIXELS as well). Lids, lashes and brows inside
# the taller window are left out by their colour (below).
SCLERA_WINDOW = (0.30, 0.16)
SCLERA_MIN_PIXELS = 12  # both eyes together, on the 240 px crop; fewer and a few pixels decide
# The correction is applied in full from this many sclera pixels, and in proportion below it (a twelfth
# of it at 12): whether a dozen pixels pass the colour test changes between copies of the same photo,
# and an all-or-nothing correction turned that into jumps of the reported ITA.
SCLERA_FULL_PIXELS = 40
SCLERA_MAX_L = 97.0  # brighter is clipped or a catch-light of the lamp, not the sclera
# Against the skin, under the same light (so whatever the light): the sclera reflects less red and more
# blue than skin of any tone, and is at least about as bright as the skin around it.
SCLERA_REDNESS = 0.8
SCLERA_BLUENESS = 1.25
SCLERA_MIN_BRIGHTNESS = 0.8
# Skin this close to grey (C* under 10: the palest and darkest tones, Monk 1-2 and 9-10) is not told
# from the sclera by its colour, and the estimate would be the skin's own: no reference is claimed.
MIN_SKIN_CHROMA = 10.0
# The whites of the eyes are not paper-white but slightly yellow. Assumed here (not yet calibrated on a
# colorimetric source or a photo with a grey card): L* 80, a* +1, b* +6 under daylight (D65). The
# light's gains are the sclera's colour over this; an error in it shifts every corrected ITA alike, so a
# person's photos stay comparable, and the +-5 % below is meant to cover it.
SCLERA_LAB = (80.0, 1.0, 6.0)
# How far the estimate is trusted: sclera colour varies from person to person by about +-4 b* (age,
# pinguecula), i.e. a red/blue gain of about +-5 %; the exposure stays unknown (the sclera is shaded by
# the lids), so only white balance narrows.
REFERENCE_WHITE_BALANCE_UNCERTAINTY = 0.05
# Lights whose colour the correction can take out: red/blue gain ratios against daylight from 0.45
# (a 12000 K blue sky or screen glow is 0.5) to 3.5 (a 3400 K lamp; 3000 K is 6.1). Beyond them the
# skin's red or blue channel is near clipping or near black, the correction divides noise, and on the
# validation faces a 3000 K cast was corrected 20-50 degrees of ITA wrong: colour is withheld instead.
CORRECTABLE_RED_OVER_BLUE = (0.45, 3.5)
REFERENCE_NAMES = {
    "whites_of_eyes": "whites of the eyes",
    # found by its look, not told apart from a white or grey wall or shirt that agrees with the face
    "white_paper": "white paper or another white surface beside your face",
    "grey_card": "a grey card or another grey surface beside your face",
}


@dataclass(frozen=True)
class Illuminant:
    """The light's colour relative to daylight, as gains on linear red, green (1.0) and blue."""

    source: str  # "whites_of_eyes", "white_paper" or "grey_card" (held by the shopper), or "none"
    gains: tuple[float, float, float]  # what the skin is corrected by
    pixels: int
    # the light as the sclera measured it, before `gains` was scaled down for a small sclera; None: gains
    measured: tuple[float, float, float] | None = None
    # how far the reference's own colour may be off neutral, as a share of the red/blue gains
    balance_uncertainty: float = REFERENCE_WHITE_BALANCE_UNCERTAINTY
    # True: the photo's pixels were divided by `gains` before they were measured (a held card), so the
    # measured colour is already the colour under daylight
    pixels_corrected: bool = False

    @property
    def described(self) -> str:
        """The reference in the shopper's words."""
        return REFERENCE_NAMES.get(self.source, "none")

    @property
    def found(self) -> bool:
        return self.source != "none"

    @property
    def correctable_margin(self) -> float:
        """How far inside the range of correctable lights this one is, in natural-log units of the
        red/blue gain ratio (negative: outside it). Without a reference daylight is assumed (1.0).
        Judged on the light as measured, not as scaled down: a few pixels of a 3000 K lamp still show it."""
        gains = self.measured or self.gains
        log_ratio = math.log(max(gains[0], 1e-6) / max(gains[2], 1e-6))
        low, high = (math.log(v) for v in CORRECTABLE_RED_OVER_BLUE)
        return min(log_ratio - low, high - log_ratio)

    def cast(self, lab: tuple[float, float, float]) -> tuple[float, float, float]:
        """The colour `lab` under daylight takes under this light: multiplied by its gains."""
        out = linear_to_lab(lab_to_linear(np.array(lab)) * np.array(self.gains))
        return float(out[0]), float(out[1]), float(out[2])

    def correct(self, lab: tuple[float, float, float]) -> tuple[float, float, float]:
        """The colour `lab` would have under daylight: divided by the light's gains in linear light."""
        linear = lab_to_linear(np.array(lab)) / np.array(self.gains)
        out = linear_to_lab(np.clip(linear, 0.0, None))
        return float(out[0]), float(out[1]), float(out[2])


NO_REFERENCE = Illuminant("none", (1.0, 1.0, 1.0), 0)


def _reference_linear() -> np.ndarray:
    return np.asarray(lab_to_linear(np.array(SCLERA_LAB)))


def estimate(crop: FaceCrop, lab: np.ndarray, skin_lab: tuple[float, float, float]) -> Illuminant:
    """The light's gains from the whites of the eyes on the normalised crop (`lab` is its CIELAB), or
    NO_REFERENCE when too little of them shows.

    The sclera is told from skin, lids and iris by its colour *relative to the skin's*: a light's colour
    multiplies both alike, so "less red and more blue than the skin" holds under any light, where a fixed
    "pale" threshold fails under a warm or cool light."""
    skin = np.asarray(lab_to_linear(np.array(skin_lab)))
    if skin[1] <= 1e-4 or math.hypot(skin_lab[1], skin_lab[2]) < MIN_SKIN_CHROMA:
        return NO_REFERENCE
    half_w, half_h = SCLERA_WINDOW[0] * EYE_DISTANCE, SCLERA_WINDOW[1] * EYE_DISTANCE
    picked = []
    for name in ("right_eye", "left_eye"):
        x, y = crop.keypoints[name]
        x0, x1 = max(0, round(x - half_w)), min(lab.shape[1], round(x + half_w))
        y0, y1 = max(0, round(y - half_h)), min(lab.shape[0], round(y + half_h))
        if x1 <= x0 or y1 <= y0:
            continue
        window = lab[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64)
        inside = crop.inside[y0:y1, x0:x1].reshape(-1)
        linear = np.asarray(lab_to_linear(window))
        green = np.maximum(linear[:, 1], 1e-4)
        red_vs_skin = (linear[:, 0] / green) / (skin[0] / skin[1])
        blue_vs_skin = (linear[:, 2] / green) / (skin[2] / skin[1])
        bright = linear[:, 1] >= SCLERA_MIN_BRIGHTNESS * skin[1]
        whiter = (red_vs_skin < SCLERA_REDNESS) & (blue_vs_skin > SCLERA_BLUENESS)
        keep = inside & bright & whiter & (window[:, 0] < SCLERA_MAX_L)
        if keep.sum() >= 4:
            picked.append(linear[keep])
    if not picked:
        return NO_REFERENCE
    sclera = np.concatenate(picked)
    if len(sclera) < SCLERA_MIN_PIXELS:
        return NO_REFERENCE
    mean = np.median(sclera, axis=0)
    ratio = (mean / mean[1]) / (_reference_linear() / _reference_linear()[1])
    strength = min(1.0, (len(sclera) - SCLERA_MIN_PIXELS + 1) / (SCLERA_FULL_PIXELS - SCLERA_MIN_PIXELS + 1))
    gains = ratio**strength  # in log units, a share `strength` of the way from daylight to the measurement
    return Illuminant(
        "whites_of_eyes",
        (float(gains[0]), 1.0, float(gains[2])),
        len(sclera),
        (float(ratio[0]), 1.0, float(ratio[2])),
    )


def kelvin_hint(gains: tuple[float, float, float]) -> str:
    """A word for the light's colour: warm, neutral or cool."""
    red_over_blue = math.log(gains[0] / max(gains[2], 1e-6))
    if red_over_blue > 0.25:
        return "warm"
    if red_over_blue < -0.25:
        return "cool"
    return "neutral"
