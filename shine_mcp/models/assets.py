"""The ONNX files shipped in this folder: their manifest, hash check, and one session each per process."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Literal

import onnxruntime as ort
from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "models.json"

ModelName = Literal["blazeface_front_128", "skin_metrics"]


class ModelInfo(BaseModel):
    """What a report says about a model it used, so a result can be traced to exact bytes."""

    name: str
    version: str
    file: str
    sha256: str
    source: str
    license: str


class ModelIntegrityError(RuntimeError):
    """A shipped model file differs from the manifest: the install is broken, not the photo."""


@cache
def manifest() -> dict[str, ModelInfo]:
    entries = json.loads(MANIFEST.read_text(encoding="utf-8"))["models"]
    return {entry["name"]: ModelInfo.model_validate(entry) for entry in entries}


def model_infos() -> list[ModelInfo]:
    return list(manifest().values())


def verified_bytes(name: ModelName) -> bytes:
    """Read a model and refuse to run it unless its sha256 matches the manifest."""
    info = manifest()[name]
    data = (HERE / info.file).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.sha256:
        raise ModelIntegrityError(f"{info.file}: sha256 {digest} does not match the manifest {info.sha256}")
    return data


@cache
def session(name: ModelName) -> ort.InferenceSession:
    """One session per model per process: creating one costs far more than running these small graphs.

    One intra-op thread measured fastest for these small graphs
    (benchmarks/bench_analysis.py): a pool's hand-offs cost more than they save on a 240 px crop,
    and an idle pool competes with the JPEG decoder for the cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # BlazeFace gains from conv fusions; the metrics graph's elementwise ops only pay their setup cost
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if name == "blazeface_front_128"
        else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    )
    # idle pool threads would otherwise spin and steal the core the next JPEG decode needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # the BlazeFace export carries unused initializers; ORT warns about them
    return ort.InferenceSession(
        verified_bytes(name), sess_options=options, providers=["CPUExecutionProvider"]
    )
