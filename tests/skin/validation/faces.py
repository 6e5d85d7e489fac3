"""The outside validation faces (manifest.json) and the controlled variants made from them.

Used by tests/skin/test_validation.py and scripts/validate_analysis.py. The photos themselves come from
the cache `scripts/fetch_validation_faces.py` fills (fetched on first use when it is missing).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from scripts import fetch_validation_faces as fetcher
from shine_mcp.models.colour import D65_WHITE, LAB_EPSILON, LAB_OFFSET, LAB_SLOPE, SRGB_TO_XYZ, srgb_to_lab
from shine_mcp.models.face import detect_faces

Box = tuple[float, float, float, float]
# Monk Skin Tone scale, lightest to darkest (Monk E., Google 2022, skintone.google, CC BY 4.0).
MONK = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")


@dataclass(frozen=True)
class Photo:
    id: str
    image: Image.Image
    faces: tuple[Box, ...]
    light: str
    profile: tuple[int, ...] = ()  # 1-based numbers of the faces seen from the side (manifest `profile`)


@dataclass(frozen=True)
class OneFace:
    """One face cut out of a validation photo (other faces blanked), with its box in the cut-out."""

    id: str
    photo: str
    image: Image.Image
    box: Box
    frontal: bool = True  # False for a face seen from the side (the detector is for frontal faces)


@cache
def photos() -> tuple[Photo, ...]:
    cache_dir = fetcher.fetch()
    out = []
    for p in fetcher.manifest()["photos"]:
        image = Image.open(fetcher.photo_path(p, cache_dir)).convert("RGB")
        faces = tuple(tuple(map(float, f)) for f in p["faces"])
        out.append(Photo(p["id"], image, faces, p["light"], tuple(p.get("profile", ()))))  # type: ignore[arg-type]
    return tuple(out)


def blank(image: Image.Image, box: Box, grow: float = 1.5) -> Image.Image:
    """Blur a face beyond recognition, so a one-face cut-out holds one face only."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    area = (int(cx - grow * w / 2), int(cy - grow * h / 2), int(cx + grow * w / 2), int(cy + grow * h / 2))
    out = image.copy()
    patch = image.crop(area).filter(ImageFilter.GaussianBlur(w / 3))
    out.paste(patch, area[:2])
    return out


@cache
def one_faces() -> tuple[OneFace, ...]:
    """Every face of every photo as a one-face photo: a square 3.2 face widths wide around it."""
    out = []
    for photo in photos():
        for i, (x, y, w, h) in enumerate(photo.faces):
            image = photo.image
            for j, other in enumerate(photo.faces):
                if j != i:
                    image = blank(image, other)
            side = min(3.2 * w, image.width, image.height)
            cx, cy = x + w / 2, y + h / 2 + 0.25 * h
            left = min(max(0.0, cx - side / 2), image.width - side)
            top = min(max(0.0, cy - side / 2), image.height - side)
            crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
            box = (x - left, y - top, w, h)
            out.append(OneFace(f"{photo.id}#{i + 1}", photo.id, crop, box, i + 1 not in photo.profile))
    return tuple(out)


def encode(image: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def to_linear(image: Image.Image) -> np.ndarray:
    srgb = np.asarray(image, dtype=np.float64) / 255.0
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def from_linear(linear: np.ndarray) -> Image.Image:
    linear = np.clip(linear, 0.0, 1.0)
    out = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return Image.fromarray((out * 255.0).round().astype(np.uint8))


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> sRGB in [0, 1], unclipped: the inverse of `colour.srgb_to_lab`."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f**3 > LAB_EPSILON, f**3, (f - LAB_OFFSET) / LAB_SLOPE) * D65_WHITE
    linear = xyz @ np.linalg.inv(SRGB_TO_XYZ).T
    linear = np.clip(linear, 0.0, 1.0)
    return np.asarray(np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055))


def monk_lab(tone: int) -> np.ndarray:
    """CIELAB of Monk tone 1-10."""
    code = MONK[tone - 1]
    rgb = np.array([int(code[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0
    return np.asarray(srgb_to_lab(rgb))


def _features(image: Image.Image, box: Box) -> np.ndarray:
    """bool [H, W]: the eyes and the mouth of the face in `box`, from the detector's keypoints (ellipses
    0.3 x 0.2 eye distances around each eye, 0.45 x 0.25 around the mouth); none if it finds no face."""
    x, y, w, h = box
    faces = detect_faces(image)
    out = np.zeros((image.height, image.width), dtype=bool)
    if not faces:
        return out
    centre = (x + w / 2, y + h / 2)
    face = min(faces, key=lambda f: math.dist(centre, (f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2)))
    (rx, ry), (lx, ly) = face.keypoints["right_eye"], face.keypoints["left_eye"]
    eyes = max(math.dist((rx, ry), (lx, ly)), 1.0)
    yy, xx = np.mgrid[0 : image.height, 0 : image.width].astype(np.float64)
    for (cx, cy), (ax, ay) in (
        ((rx, ry), (0.3, 0.2)),
        ((lx, ly), (0.3, 0.2)),
        (face.keypoints["mouth_center"], (0.45, 0.25)),
    ):
        out |= ((xx - cx) / (ax * eyes)) ** 2 + ((yy - cy) / (ay * eyes)) ** 2 <= 1.0
    return out


def skin_mask(image: Image.Image, box: Box) -> np.ndarray:
    """Soft mask of the face's skin: inside an ellipse of the face box, the eyes and mouth left out, near
    the cheeks' median colour in a*, b* and no more than a little darker (hair, brows and nostrils are).

    Skin lighter than the cheeks (the lit side of the face, a shiny forehead or nose) is skin whatever its
    lightness: a mask that also required L* near the cheeks' left a lit forehead or half a side-lit face in
    its own colour, so a face recoloured to Monk 8-10 carried a pale patch the occlusion check rightly saw
    as a cover (10 of the 16 faces whose ITA was withheld at Monk 7-10, issue 16). The eyes are left out
    by the keypoints rather than by colour, so their whites, the light's reference, keep their colour."""
    x, y, w, h = box
    lab = srgb_to_lab(np.asarray(image, dtype=np.float64) / 255.0)
    yy, xx = np.mgrid[0 : image.height, 0 : image.width].astype(np.float64)
    ellipse = ((xx - (x + w / 2)) / (0.55 * w)) ** 2 + ((yy - (y + 0.55 * h)) / (0.7 * h)) ** 2
    cheeks = lab[int(y + 0.55 * h) : int(y + 0.75 * h), int(x + 0.2 * w) : int(x + 0.8 * w)].reshape(-1, 3)
    median = np.median(cheeks, axis=0)
    darker = np.minimum(lab[..., 0] - median[0], 0.0)
    distance = np.sqrt((0.5 * darker) ** 2 + (lab[..., 1] - median[1]) ** 2 + (lab[..., 2] - median[2]) ** 2)
    near = np.clip((30.0 - distance) / 10.0, 0.0, 1.0) * ~_features(image, box)
    return np.asarray(near * np.clip((1.15 - ellipse) / 0.3, 0.0, 1.0))


def skin_median(image: Image.Image, box: Box) -> np.ndarray:
    """The median CIELAB of the face's core skin (where `skin_mask` is nearly 1)."""
    lab = srgb_to_lab(np.asarray(image, dtype=np.float64) / 255.0)
    return np.asarray(np.median(lab[skin_mask(image, box) > 0.9], axis=0))


def recolour(image: Image.Image, box: Box, target_lab: np.ndarray) -> Image.Image:
    """Shift the face's skin so its median colour becomes `target_lab`, keeping its texture and shading."""
    mask = skin_mask(image, box)
    lab = srgb_to_lab(np.asarray(image, dtype=np.float64) / 255.0)
    shift = np.asarray(target_lab) - skin_median(image, box)
    moved = lab + shift * mask[..., None]
    rgb = lab_to_srgb(moved)
    return Image.fromarray((rgb * 255.0).round().astype(np.uint8))


def recolour_exposed(image: Image.Image, box: Box, target_lab: np.ndarray) -> Image.Image:
    """The face's skin given the median colour `target_lab` without leaving the gamut, then exposed as a
    camera exposes a face. Lightness is scaled rather than shifted (shadows stay proportionally darker)
    and the a*, b* shift is scaled down in shadows (dark skin in shadow has little chroma), where a flat
    Lab shift pushed the shadows of Monk 9-10 to black and their chroma out of gamut; when the skin's
    brightest 1 % would still pass 97 % of full scale (Monk 1-3 sit at L* 92-94, so their shaded
    highlights pass white) the whole photo is darkened in linear light. The fairness checks compare
    well-exposed photos of every tone; a blown-out face is refused whatever its tone."""
    mask = skin_mask(image, box)
    lab = srgb_to_lab(np.asarray(image, dtype=np.float64) / 255.0)
    median = skin_median(image, box)
    target = np.asarray(target_lab)
    relative = np.clip(lab[..., 0] / max(float(median[0]), 1.0), 0.0, 1.0)
    moved = lab.copy()
    moved[..., 0] = lab[..., 0] * (1.0 + mask * (target[0] / max(float(median[0]), 1.0) - 1.0))
    for axis in (1, 2):
        moved[..., axis] = lab[..., axis] + mask * relative * (target[axis] - median[axis])
    fy = (moved[..., 0] + 16.0) / 116.0
    f = np.stack([fy + moved[..., 1] / 500.0, fy, fy - moved[..., 2] / 200.0], axis=-1)
    xyz = np.where(f**3 > LAB_EPSILON, f**3, (f - LAB_OFFSET) / LAB_SLOPE) * D65_WHITE
    linear = np.clip(xyz @ np.linalg.inv(SRGB_TO_XYZ).T, 0.0, None)
    bright = float(np.percentile(linear[mask > 0.5].max(axis=-1), 99))
    return from_linear(linear * min(1.0, 0.97 / max(bright, 1e-6)))


def highlight(image: Image.Image, box: Box, strength: float = 0.25) -> Image.Image:
    """A specular highlight on the forehead and the nose: the light's own colour (white) added in linear
    light, as a shiny film reflects it, the same amount on every skin tone (dichromatic model)."""
    x, y, w, h = box
    yy, xx = np.mgrid[0 : image.height, 0 : image.width].astype(np.float64)
    spots = ((x + 0.5 * w, y + 0.22 * h, 0.16 * w, 0.07 * h), (x + 0.5 * w, y + 0.55 * h, 0.05 * w, 0.1 * h))
    film = sum(np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)) for cx, cy, rx, ry in spots)
    return from_linear(to_linear(image) + strength * np.asarray(film)[..., None])


def kelvin_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a blackbody's light, normalised to green (Tanner Helland's fit of Planck's law)."""
    t = kelvin / 100.0
    red = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    green = (
        99.4708025861 * math.log(t) - 161.1195681661
        if t <= 66
        else 288.1221695283 * (t - 60) ** -0.0755148492
    )
    blue = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    srgb = np.clip(np.array([red, green, blue]) / 255.0, 1e-3, 1.0)
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return np.asarray(linear / linear[1])


def white_balance(image: Image.Image, kelvin: float) -> Image.Image:
    """The scene lit by a `kelvin` light while the camera kept its 6500 K white balance."""
    gains = kelvin_rgb(kelvin) / kelvin_rgb(6500.0)
    return from_linear(to_linear(image) * gains)


def exposure(image: Image.Image, factor: float) -> Image.Image:
    return from_linear(to_linear(image) * factor)


def tinted(image: Image.Image, rgb_gain: tuple[float, float, float]) -> Image.Image:
    """A coloured light (e.g. a blue screen glow) in linear light."""
    return from_linear(to_linear(image) * np.array(rgb_gain))


def greyscale(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(encode(image, quality))).convert("RGB")


def recrop(
    image: Image.Image, box: Box, margin: float, shift: tuple[float, float] = (0.0, 0.0)
) -> Image.Image:
    """A square crop `margin` face widths wide around the face, moved by `shift` face widths."""
    x, y, w, h = box
    side = min(margin * w, image.width, image.height)
    cx, cy = x + w / 2 + shift[0] * w, y + h / 2 + 0.25 * h + shift[1] * w
    left = min(max(0.0, cx - side / 2), image.width - side)
    top = min(max(0.0, cy - side / 2), image.height - side)
    return image.crop((round(left), round(top), round(left + side), round(top + side)))


def mirror(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))


def white_card(image: Image.Image, box: Box) -> Image.Image:
    """A sheet of white paper held over the face's left half (the image's right half of the face)."""
    x, y, w, h = box
    out = image.copy()
    ImageDraw.Draw(out).rectangle((x + 0.5 * w, y - 0.3 * h, x + 1.3 * w, y + 1.3 * h), fill=(244, 244, 240))
    return out


def skin_patch(image: Image.Image, box: Box) -> Image.Image:
    """A flat patch of the face's own median skin colour over one cheek (a plaster, concealer, a sticker)."""
    x, y, w, h = box
    rgb = np.asarray(image, dtype=np.float64)
    cheek = rgb[int(y + 0.55 * h) : int(y + 0.75 * h), int(x + 0.25 * w) : int(x + 0.75 * w)].reshape(-1, 3)
    colour = tuple(int(v) for v in np.median(cheek, axis=0))
    out = image.copy()
    ImageDraw.Draw(out).rectangle((x + 0.52 * w, y + 0.45 * h, x + 0.95 * w, y + 0.85 * h), fill=colour)
    return out


def eye_band(image: Image.Image, box: Box) -> Image.Image:
    """A dark band over the eyes (sunglasses, a censor bar)."""
    x, y, w, h = box
    out = image.copy()
    ImageDraw.Draw(out).rectangle((x - 0.05 * w, y + 0.25 * h, x + 1.05 * w, y + 0.45 * h), fill=(20, 20, 24))
    return out


def second_face(
    image: Image.Image, other: OneFace, width_fraction: float, corner: str = "right"
) -> Image.Image:
    """Paste `other`'s face so it is `width_fraction` of the frame's width, at the top corner."""
    x, y, w, h = other.box
    pad = 0.6 * w
    face = other.image.crop((int(x - pad), int(y - pad), int(x + w + pad), int(y + h + pad)))
    scale = width_fraction * image.width / w
    face = face.resize((max(1, round(face.width * scale)), max(1, round(face.height * scale))))
    out = image.copy()
    left = image.width - face.width if corner == "right" else 0
    out.paste(face, (left, 0))
    return out


def blur(image: Image.Image, sigma: float) -> Image.Image:
    """A Gaussian blur of `sigma` image pixels: a photo out of focus or shaken."""
    return image.filter(ImageFilter.GaussianBlur(sigma))


def sensor_noise(image: Image.Image, sd: float, seed: int = 1) -> Image.Image:
    """Gaussian noise of `sd` levels (of 255) on every channel: a dim room's high ISO."""
    rng = np.random.default_rng(seed)
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0.0, sd, (image.height, image.width, 3))
    return Image.fromarray(np.clip(noisy, 0.0, 255.0).round().astype(np.uint8))


# Where `second_face_at` pastes a face: (horizontal, vertical) share of the free room left of / above it.
POSITIONS: dict[str, tuple[float, float]] = {
    "top-left": (0.0, 0.0),
    "top": (0.5, 0.0),
    "top-right": (1.0, 0.0),
    "left": (0.0, 0.5),
    "right": (1.0, 0.5),
    "bottom-left": (0.0, 1.0),
    "bottom": (0.5, 1.0),
    "bottom-right": (1.0, 1.0),
}
FRAME_SHAPES: dict[str, tuple[int, int]] = {"square": (1, 1), "portrait": (3, 4), "landscape": (4, 3)}


def framed(face: OneFace, shape: str, fill: tuple[int, int, int] = (118, 110, 102)) -> Image.Image:
    """The one-face photo centred in a `shape` frame (square, 3:4 portrait or 4:3 landscape) as wide or
    as tall as it."""
    side = face.image.width
    across, down = FRAME_SHAPES[shape]
    size = (side, side * down // across) if down >= across else (side * across // down, side)
    frame = Image.new("RGB", size, fill)
    frame.paste(face.image, ((size[0] - side) // 2, (size[1] - side) // 2))
    return frame


def second_face_at(image: Image.Image, other: OneFace, width_fraction: float, position: str) -> Image.Image:
    """Paste `other`'s face (with a margin of its surroundings) so the face is `width_fraction` of the
    frame's width, at one of POSITIONS: a corner or the middle of an edge."""
    x, y, w, h = other.box
    pad = 0.6 * w
    face = other.image.crop((int(x - pad), int(y - pad), int(x + w + pad), int(y + h + pad)))
    scale = width_fraction * image.width / w
    face = face.resize((max(1, round(face.width * scale)), max(1, round(face.height * scale))))
    across, down = POSITIONS[position]
    out = image.copy()
    out.paste(face, (round(across * (image.width - face.width)), round(down * (image.height - face.height))))
    return out
