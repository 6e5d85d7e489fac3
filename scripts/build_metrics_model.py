"""Build `shine_mcp/models/skin_metrics.onnx`: the per-pixel colour and texture measurements, as plain ONNX.

No trained weights: the graph is the sRGB -> CIELAB maths, pixel classes (clipped, specular, shadow),
band-pass filters and per-region sums, written once as operators so one onnxruntime call measures a
face crop. Thresholds live in THRESHOLDS below and are copied into the model's metadata.

Run: `.venv/bin/python scripts/build_metrics_model.py [--output PATH]` (default: the shipped file, and
its sha256 is written into models.json). onnxruntime 1.31 rejects the IR version onnx 1.23 writes by
default, so the model pins IR 8 / opset 17.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = Path(__file__).resolve().parent.parent / "shine_mcp" / "models"
VERSION = "2"
IR_VERSION = 8
OPSET = 17
REGIONS = ("forehead", "right_cheek", "left_cheek", "nose", "chin")
FEATURES = (
    "area",
    "clipped",
    "considered",
    "valid",
    "sum_l",
    "sum_a",
    "sum_b",
    "sum_l2",
    "specular",
    "shine_base",
    "shadow",
    "fine",
    "sum_hf2",
    "sum_mid",
    "sum_mid2",
    "spots",
    "sum_lap",
    "sum_lap2",
)
THRESHOLDS = {
    # a channel at or beyond these is clipped: its true value is unknown
    "clip_high": 250.0 / 255.0,
    "clip_low": 3.0 / 255.0,
    # a pixel is skin-like if within this weighted distance of the cheeks' mean colour; lightness is
    # down-weighted (x0.5) so shading and highlights on skin stay in while hair, brows, hats drop out
    "skin_distance": 20.0,
    # dichromatic reflection: a highlight adds the light's own colour (white, once the camera has
    # balanced for the light) on top of the skin's, so every channel rises, by about the same amount.
    # Both are judged in linear light, against the cheeks' mean: the smallest channel's rise, a fraction
    # of full scale, must pass `specular_linear_excess`, and the rise must be near white, its smallest
    # channel at least `specular_white_ratio` of its largest. The same film of light rises the same on
    # every skin tone, where it adds several times more L* to dark skin than to light and lowers dark
    # skin's chroma far more: judged as 15 L* above and < 0.75x the chroma of the cheeks, one highlight
    # read 7.2 pp on Monk 7-10 and 0.6-1.5 pp on Monk 1-6. The white ratio keeps out what only looks
    # like a highlight in L*: a forehead lit brighter than the cheeks, or a side-lit half face, rises in
    # the skin's own colour (blue least), and a blown-out patch in its clipped colour (issue 16;
    # docs/analysis.md, "What the colour rows say").
    "specular_linear_excess": 0.15,
    "specular_white_ratio": 0.75,
    "shadow_dl": 20.0,
    # band-pass scales in crop pixels (the crop puts 80 px between the eyes, about 0.8 mm a pixel)
    "sigma_fine": 1.0,
    "sigma_coarse": 8.0,
    # a dark-spot candidate is a local minimum at least this much darker (L*) than its surround
    "spot_depth": 4.0,
    "spot_window": 7.0,
    "erode_window": 5.0,
}


class GraphBuilder:
    """Tiny helper so the graph reads as formulas: each method adds one node and returns its name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(
        self, value: float | list[float] | np.ndarray, hint: str = "c", dtype: type = np.float32
    ) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(
        self, op_type: str, *inputs: str, hint: str | None = None, out: str | None = None, **attrs: object
    ) -> str:
        output = out or self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attrs))
        return output

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs: object) -> list[str]:
        outputs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, **attrs))
        return outputs

    def scalar(self, value: float) -> str:
        return self.const(value, "k")

    def weighted_mean(self, weight: str, value: str) -> str:
        total = self.op("ReduceSum", self.op("Mul", weight, value), keepdims=0)
        count = self.op("Max", self.op("ReduceSum", weight, keepdims=0), self.scalar(1.0))
        return self.op("Div", total, count)

    def gaussian(self, image4d: str, sigma: float) -> str:
        """Separable Gaussian on [1,1,H,W] with reflected borders, so edges add no false contrast."""
        radius = max(1, math.ceil(3 * sigma))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps /= taps.sum()
        pads = self.const([0, 0, radius, radius, 0, 0, radius, radius], "pads", np.int64)
        padded = self.op("Pad", image4d, pads, mode="reflect")
        horizontal = self.op("Conv", padded, self.const(taps.reshape(1, 1, 1, -1), "gx"))
        return self.op("Conv", horizontal, self.const(taps.reshape(1, 1, -1, 1), "gy"))

    def coarse_gaussian(self, image4d: str, sigma: float, factor: int, hw: str) -> str:
        """A wide Gaussian done cheaply: average-pool by `factor`, blur by sigma/factor, resize back.

        Only used to remove shading, where the exact kernel shape does not matter; a direct 49-tap
        filter cost more than the rest of the graph together."""
        pooled = self.op("AveragePool", image4d, kernel_shape=[factor, factor], strides=[factor, factor])
        blurred = self.gaussian(pooled, sigma / factor)
        sizes = self.op("Concat", self.const([1, 1], "s", np.int64), hw, axis=0)
        return self.op(
            "Resize", blurred, "", "", sizes, mode="linear", coordinate_transformation_mode="half_pixel"
        )


def build_model() -> onnx.ModelProto:
    g = GraphBuilder()
    t = THRESHOLDS
    rgb8, masks = "rgb", "masks"  # [H, W, 3] 8-bit sRGB codes; [R, H, W] region masks in {0, 1}

    # sRGB -> linear (IEC 61966-2-1) -> XYZ/white (D65) -> CIELAB (CIE 15:2004); same as colour.py.
    # Pixels arrive as 8-bit codes, so linearisation is an exact 256-entry table lookup: Pow over
    # every channel of every pixel was the graph's most expensive node.
    codes = np.arange(256, dtype=np.float64) / 255.0
    lut = np.where(codes <= 0.04045, codes / 12.92, ((codes + 0.055) / 1.055) ** 2.4)
    linear = g.op("Gather", g.const(lut), g.op("Cast", rgb8, to=TensorProto.INT64), axis=0)
    rgb = g.op("Div", g.op("Cast", rgb8, to=TensorProto.FLOAT), g.scalar(255.0))
    srgb_to_xyz = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    d65 = srgb_to_xyz.sum(axis=1)
    scaled = g.op("MatMul", linear, g.const((srgb_to_xyz / d65[:, None]).T))
    eps, slope, offset = (6 / 29) ** 3, 1 / (3 * (6 / 29) ** 2), 4 / 29
    f = g.op(
        "Where",
        g.op("Greater", scaled, g.scalar(eps)),
        g.op("Pow", g.op("Max", scaled, g.scalar(eps)), g.scalar(1 / 3)),
        g.op("Add", g.op("Mul", scaled, g.scalar(slope)), g.scalar(offset)),
    )
    fx, fy, fz = (
        g.op("Squeeze", part, g.const([2], "ax", np.int64)) for part in g.ops("Split", [f], 3, axis=2)
    )
    lightness = g.op("Sub", g.op("Mul", fy, g.scalar(116.0)), g.scalar(16.0))
    a = g.op("Mul", g.op("Sub", fx, fy), g.scalar(500.0))
    b = g.op("Mul", g.op("Sub", fy, fz), g.scalar(200.0))
    unsq = g.const([2], "ax", np.int64)
    g.op("Concat", *(g.op("Unsqueeze", x, unsq) for x in (lightness, a, b)), axis=2, out="lab")
    chroma = g.op("Sqrt", g.op("Add", g.op("Mul", a, a), g.op("Mul", b, b)))

    # pixel classes
    one = g.scalar(1.0)
    hi_clip = g.op("GreaterOrEqual", g.op("ReduceMax", rgb, axes=[2], keepdims=0), g.scalar(t["clip_high"]))
    lo_clip = g.op("LessOrEqual", g.op("ReduceMin", rgb, axes=[2], keepdims=0), g.scalar(t["clip_low"]))
    clipped = g.op("Cast", g.op("Or", hi_clip, lo_clip), to=TensorProto.FLOAT)
    unclipped = g.op("Sub", one, clipped)

    # reference skin colour: the cheeks' unclipped mean (cheeks are the least often covered by hair,
    # brows, glasses or shine)
    cheeks = g.op(
        "ReduceSum",
        g.op("Gather", masks, g.const([1, 2], "idx", np.int64), axis=0),
        g.const([0], "ax", np.int64),
        keepdims=0,
    )
    ref_w = g.op("Mul", cheeks, unclipped)
    l_ref, a_ref, b_ref, c_ref = (g.weighted_mean(ref_w, x) for x in (lightness, a, b, chroma))
    # the cheeks' mean in linear light, per channel: [3] (one MatMul of the flattened weights and pixels)
    ref_count = g.op("Max", g.op("ReduceSum", ref_w, keepdims=0), g.scalar(1.0))
    linear_sum = g.op(
        "MatMul",
        g.op("Reshape", ref_w, g.const([1, -1], "shape", np.int64)),
        g.op("Reshape", linear, g.const([-1, 3], "shape", np.int64)),
    )
    linear_ref = g.op("Div", g.op("Reshape", linear_sum, g.const([3], "shape", np.int64)), ref_count)
    g.op(
        "Concat",
        *(g.op("Unsqueeze", x, g.const([0], "ax", np.int64)) for x in (l_ref, a_ref, b_ref, c_ref)),
        axis=0,
        out="reference",
    )

    dl = g.op("Sub", lightness, l_ref)
    dist = g.op(
        "Sqrt",
        g.op(
            "Add",
            g.op("Mul", g.op("Mul", dl, dl), g.scalar(0.25)),
            g.op(
                "Add",
                g.op("Mul", g.op("Sub", a, a_ref), g.op("Sub", a, a_ref)),
                g.op("Mul", g.op("Sub", b, b_ref), g.op("Sub", b, b_ref)),
            ),
        ),
    )
    skin_like = g.op("Cast", g.op("Less", dist, g.scalar(t["skin_distance"])), to=TensorProto.FLOAT)
    considered = g.op("Mul", skin_like, unclipped)
    # the light added over the cheeks in every channel (linear): a highlight if enough and near white.
    # One Gemm subtracts the cheeks' mean from every pixel and Min/Max compare the three channels
    # elementwise: a broadcast Sub and a reduce over the 3-wide last axis cost several times more.
    linear_2d = g.op("Reshape", linear, g.const([-1, 3], "shape", np.int64))
    rise_2d = g.op("Gemm", linear_2d, g.const(np.eye(3), "eye"), g.op("Neg", linear_ref))
    rise = g.ops("Split", [rise_2d], 3, axis=1)
    hw_of_lightness = g.op("Shape", lightness)
    rise_least = g.op("Reshape", g.op("Min", *rise), hw_of_lightness)
    rise_most = g.op("Reshape", g.op("Max", *rise), hw_of_lightness)
    is_bright = g.op("Greater", rise_least, g.scalar(t["specular_linear_excess"]))
    is_pale = g.op("GreaterOrEqual", rise_least, g.op("Mul", rise_most, g.scalar(t["specular_white_ratio"])))
    # highlights count even where they are too white to pass as skin or have clipped: a strong
    # glint is the clearest shine there is
    specular = g.op("Cast", g.op("And", is_bright, is_pale), to=TensorProto.FLOAT)
    spec_skin = g.op("Mul", considered, specular)
    shine_base = g.op("Max", considered, specular)
    shadow = g.op(
        "Mul", considered, g.op("Cast", g.op("Less", dl, g.scalar(-t["shadow_dl"])), to=TensorProto.FLOAT)
    )
    valid = g.op("Sub", g.op("Sub", considered, spec_skin), shadow)

    # spatial bands of L*: fine (texture), mid (tone unevenness, spots); coarse shading is removed
    hw = g.op("Shape", lightness)
    l4 = g.op("Reshape", lightness, g.op("Concat", g.const([1, 1], "s", np.int64), hw, axis=0))
    fine_blur = g.gaussian(l4, t["sigma_fine"])
    coarse_blur = g.coarse_gaussian(l4, t["sigma_coarse"], 4, hw)
    hf = g.op("Reshape", g.op("Sub", l4, fine_blur), hw)
    mid4 = g.op("Sub", fine_blur, coarse_blur)
    mid = g.op("Reshape", mid4, hw)
    lap_kernel = g.const(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32).reshape(1, 1, 3, 3))
    lap = g.op("Reshape", g.op("Conv", l4, lap_kernel, pads=[1, 1, 1, 1]), hw)

    # "fine" pixels: valid skin whose whole neighbourhood is valid, so brows, nostrils, hairlines and
    # highlight edges never count as texture
    ew = int(t["erode_window"])
    invalid4 = g.op(
        "Reshape", g.op("Sub", one, valid), g.op("Concat", g.const([1, 1], "s", np.int64), hw, axis=0)
    )
    near_invalid = g.op("MaxPool", invalid4, kernel_shape=[ew, ew], pads=[ew // 2] * 4, strides=[1, 1])
    fine = g.op("Sub", one, g.op("Reshape", near_invalid, hw))

    sw = int(t["spot_window"])
    neighbourhood_min = g.op(
        "Neg", g.op("MaxPool", g.op("Neg", mid4), kernel_shape=[sw, sw], pads=[sw // 2] * 4, strides=[1, 1])
    )
    is_min = g.op("Equal", mid4, neighbourhood_min)
    deep = g.op("Less", mid4, g.scalar(-t["spot_depth"]))
    spots = g.op(
        "Mul", fine, g.op("Reshape", g.op("Cast", g.op("And", is_min, deep), to=TensorProto.FLOAT), hw)
    )

    def times(*xs: str) -> str:
        out = xs[0]
        for x in xs[1:]:
            out = g.op("Mul", out, x)
        return out

    ones = g.op("Add", g.op("Mul", lightness, g.scalar(0.0)), one)
    features = {
        "area": ones,
        "clipped": clipped,
        "considered": considered,
        "valid": valid,
        "sum_l": times(valid, lightness),
        "sum_a": times(valid, a),
        "sum_b": times(valid, b),
        "sum_l2": times(valid, lightness, lightness),
        "specular": specular,
        "shine_base": shine_base,
        "shadow": shadow,
        "fine": fine,
        "sum_hf2": times(fine, hf, hf),
        "sum_mid": times(fine, mid),
        "sum_mid2": times(fine, mid, mid),
        "spots": spots,
        "sum_lap": times(fine, lap),
        "sum_lap2": times(fine, lap, lap),
    }
    assert tuple(features) == FEATURES
    flat = g.const([0, -1], "shape", np.int64)
    stacked = g.op(
        "Concat", *(g.op("Unsqueeze", features[k], g.const([0], "ax", np.int64)) for k in FEATURES), axis=0
    )
    feats_flat = g.op("Reshape", stacked, g.const([len(FEATURES), -1], "shape", np.int64))
    masks_flat = g.op("Reshape", masks, flat)
    g.op("Gemm", masks_flat, feats_flat, transB=1, out="region_stats")  # [R, F]: sums per region

    graph = helper.make_graph(
        g.nodes,
        "skin_metrics",
        [
            helper.make_tensor_value_info("rgb", TensorProto.UINT8, ["H", "W", 3]),
            helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["R", "H", "W"]),
        ],
        [
            helper.make_tensor_value_info("lab", TensorProto.FLOAT, ["H", "W", 3]),
            helper.make_tensor_value_info("region_stats", TensorProto.FLOAT, ["R", len(FEATURES)]),
            helper.make_tensor_value_info("reference", TensorProto.FLOAT, [4]),
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="shine scripts/build_metrics_model.py",
        producer_version=VERSION,
        doc_string=__doc__.splitlines()[0],
    )
    model.ir_version = IR_VERSION
    model.model_version = int(VERSION)
    meta = {
        "version": VERSION,
        "regions": json.dumps(list(REGIONS)),
        "features": json.dumps(list(FEATURES)),
        "thresholds": json.dumps(THRESHOLDS, sort_keys=True),
        "reference_outputs": json.dumps(["l", "a", "b", "chroma"]),
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=MODELS / "skin_metrics.onnx")
    args = parser.parse_args()
    data = build_model().SerializeToString(deterministic=True)
    args.output.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    if args.output.resolve() == (MODELS / "skin_metrics.onnx").resolve():
        manifest_path = MODELS / "models.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        for entry in manifest["models"]:
            if entry["name"] == "skin_metrics":
                entry["sha256"], entry["version"] = digest, VERSION
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(data)} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
