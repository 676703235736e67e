"""The sidecar manifest of a TensorRT engine, and the check that refuses an engine built elsewhere.

A serialized TensorRT engine only runs on the TensorRT version and the GPU architecture that
built it, and is only the shipped model if it was built from the same ONNX file. The manifest
(`<engine>.json`, written by `export/tensorrt_build.py`) records all three; the runtime compares
them with this machine before it deserialises anything. Pure Python: testable without a GPU.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from edge_fetal.errors import BackendError

MANIFEST_VERSION = 1
DEFAULT_ONNX = "engines/fetal_mtl.onnx"


@dataclass(frozen=True)
class GpuIdentity:
    """The CUDA device an engine is built for or runs on: name and compute capability ("8.7")."""

    name: str
    compute_capability: str


def engine_manifest_path(engine_path: str | Path) -> Path:
    """`engines/fetal_mtl.engine` → `engines/fetal_mtl.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def rebuild_command(onnx_path: str | Path | None = None) -> str:
    return f"edge-fetal export tensorrt --onnx {onnx_path or DEFAULT_ONNX}"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_engine_manifest(engine_path: str | Path) -> dict:
    """The manifest beside an engine; a BackendError saying how to rebuild when absent or unreadable."""
    path = engine_manifest_path(engine_path)
    if not path.is_file():
        raise BackendError(f"no engine manifest {path} beside {engine_path}, so it cannot be checked against "
                           f"this GPU: rebuild it with `{rebuild_command()}`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BackendError(f"{path} is not valid JSON ({error}): rebuild the engine with `{rebuild_command()}`") from None
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise BackendError(f"{path} has manifest version {manifest.get('manifest_version')}, expected {MANIFEST_VERSION}: "
                           f"rebuild the engine with `{rebuild_command(manifest.get('onnx', {}).get('path'))}`")
    return manifest


def check_engine_manifest(manifest: dict, *, trt_version: str, gpu_name: str, compute_capability: str,
                          onnx_sha256: str | None = None, engine_sha256: str | None = None) -> None:
    """Raise a BackendError naming every difference between the engine's build and this machine.

    Refused: another TensorRT version, another compute capability (an engine holds kernels for one
    GPU architecture), another ONNX file (when `onnx_sha256` is given), an engine file that is not
    the one the manifest describes (when `engine_sha256` is given). A different GPU name with the
    same compute capability (Orin Nano vs Orin NX) is accepted: TensorRT runs such engines.
    """
    built_gpu = manifest.get("gpu", {})
    differences = []
    if manifest.get("tensorrt_version") != trt_version:
        differences.append(f"TensorRT {manifest.get('tensorrt_version')} built it but TensorRT {trt_version} runs here")
    if built_gpu.get("compute_capability") != compute_capability:
        differences.append(f"it was built for GPU compute capability {built_gpu.get('compute_capability')} "
                           f"({built_gpu.get('name')}) but this GPU ({gpu_name}) has {compute_capability}")
    onnx = manifest.get("onnx", {})
    if onnx_sha256 is not None and onnx.get("sha256") != onnx_sha256:
        differences.append(f"it was built from an ONNX file with sha256 {str(onnx.get('sha256'))[:12]}… "
                           f"but the model given has sha256 {onnx_sha256[:12]}…")
    if engine_sha256 is not None and manifest.get("engine", {}).get("sha256") != engine_sha256:
        differences.append("the engine file is not the one its manifest describes (sha256 differs)")
    if differences:
        raise BackendError(f"the TensorRT engine cannot be used here: {'; '.join(differences)}; "
                           f"rebuild it on this machine with `{rebuild_command(onnx.get('path'))}`")
