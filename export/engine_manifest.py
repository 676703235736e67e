"""Write the engine manifest (`<engine>.json`) at build time; read and check it (from the runtime).

Reading and checking live in `edge_fetal/runtime/engine_manifest.py`, because the TensorRT backend
checks an engine before loading it and the runtime never imports `export/`; they are re-exported
here so that export code has one place to look.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from edge_fetal.evaluation.report import write_json_atomic
from edge_fetal.runtime.engine_manifest import (  # noqa: F401  (re-exported)
    MANIFEST_VERSION,
    GpuIdentity,
    check_engine_manifest,
    engine_manifest_path,
    read_engine_manifest,
    rebuild_command,
    sha256_of,
)


def engine_manifest(engine_path: Path, onnx_path: Path, *, trt_version: str, gpu: GpuIdentity, precision: str,
                    profile: dict, fp32_layers: list[str], workspace_mb: int, timing_cache: str | None) -> dict:
    """The manifest of a freshly built engine.

    profile: `{"input": name, "min": shape, "opt": shape, "max": shape}`.
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "engine": {"file": engine_path.name, "sha256": sha256_of(engine_path), "bytes": engine_path.stat().st_size},
        "onnx": {"file": onnx_path.name, "path": str(onnx_path), "sha256": sha256_of(onnx_path)},
        "tensorrt_version": trt_version,
        "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability},
        "precision": precision,
        "fp32_layers": fp32_layers,
        "profile": profile,
        "workspace_mb": workspace_mb,
        "timing_cache": timing_cache,
        "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_engine_manifest(engine_path: str | Path, manifest: dict) -> Path:
    path = engine_manifest_path(engine_path)
    write_json_atomic(path, manifest)
    return path
