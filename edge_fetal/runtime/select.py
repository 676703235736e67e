"""Pick and open a backend by name: `auto`, `tensorrt`, `onnxruntime` or `torch`.

`auto` tries, in order: the TensorRT engine beside the model, if present and its manifest matches
this GPU and TensorRT; ONNX Runtime with the best available provider; ONNX Runtime on the CPU.
Every decision is logged as one line, and nothing falls back silently. What the machine offers
is asked through the small probe functions below, which the tests replace.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edge_fetal.engines import shipped_torch_weights
from edge_fetal.errors import BackendError
from edge_fetal.runtime.backend import Backend
from edge_fetal.runtime.engine_manifest import (
    GpuIdentity,
    check_engine_manifest,
    read_engine_manifest,
    rebuild_command,
    sha256_of,
)
from edge_fetal.runtime.onnxruntime_backend import PREFERENCE

BACKEND_NAMES = ("auto", "tensorrt", "onnxruntime", "torch")
BACKEND_CLASSES = {  # name → (module, class), imported only when chosen
    "tensorrt": ("edge_fetal.runtime.tensorrt_backend", "TensorRTBackend"),
    "onnxruntime": ("edge_fetal.runtime.onnxruntime_backend", "OnnxRuntimeBackend"),
    "torch": ("edge_fetal.runtime.torch_backend", "TorchBackend"),
}


# --- probes: what this machine offers (replaced in tests) -------------------------------------

def tensorrt_version() -> str | None:
    """The installed TensorRT's version, or None when tensorrt or cuda-python is missing."""
    try:
        if importlib.util.find_spec("tensorrt") is None or importlib.util.find_spec("cuda") is None:
            return None
        import tensorrt
    except ImportError:  # installed but its libraries do not load
        return None
    return tensorrt.__version__


def gpu_identity() -> GpuIdentity | None:
    """The CUDA GPU as cuda-python sees it, or None when there is none (or no cuda-python)."""
    from edge_fetal.runtime.cuda_memory import cuda_device

    try:
        return cuda_device()
    except BackendError:
        return None


def ort_providers() -> list[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()


# --- choice ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """One backend to try: its name, constructor arguments, and why it is next."""

    backend: str
    kwargs: dict = field(default_factory=dict)
    reason: str = ""


def default_engine_path(model_path: str | Path) -> Path:
    """`engines/fetal_mtl.onnx` → `engines/fetal_mtl.engine`."""
    return Path(model_path).with_suffix(".engine")


def tensorrt_refusal(model_path: Path, engine_path: Path) -> str | None:
    """Why the TensorRT engine cannot be used here, as one sentence; None when it can."""
    from edge_fetal.runtime.tensorrt_backend import NO_TENSORRT

    version = tensorrt_version()
    if version is None:
        return NO_TENSORRT
    gpu = gpu_identity()
    if gpu is None:
        return "no CUDA GPU is visible here, so the TensorRT backend cannot run: use --backend onnxruntime"
    if not engine_path.is_file():
        return f"no TensorRT engine at {engine_path}: build one with `{rebuild_command(model_path)}`"
    try:
        check_engine_manifest(read_engine_manifest(engine_path), trt_version=version, gpu_name=gpu.name,
                              compute_capability=gpu.compute_capability,
                              onnx_sha256=sha256_of(model_path) if model_path.is_file() else None)
    except BackendError as error:
        return str(error)
    return None


def plan_auto(model_path: str | Path, engine_path: str | Path | None = None,
              log: Callable[[str], None] = print) -> list[Candidate]:
    """The backends `auto` tries, best first; logs why TensorRT is skipped when it is."""
    model_path = Path(model_path)
    engine_path = Path(engine_path) if engine_path else default_engine_path(model_path)
    plan = []
    refusal = tensorrt_refusal(model_path, engine_path)
    if refusal is None:
        gpu = gpu_identity()
        plan.append(Candidate("tensorrt", {"engine_path": engine_path, "onnx_path": model_path},
                              f"engine {engine_path} matches this {gpu.name} and TensorRT {tensorrt_version()}"))
    else:
        log(f"backend auto: skipping TensorRT: {refusal}")
    available = ort_providers()
    for i, provider in enumerate(PREFERENCE[:-1]):  # each GPU provider, with the ones below it for what it cannot run
        if provider in available:
            chain = [p for p in PREFERENCE[i:] if p in available or p == "CPUExecutionProvider"]
            plan.append(Candidate("onnxruntime", {"model_path": model_path, "providers": chain},
                                  f"{provider} is available in ONNX Runtime"))
    plan.append(Candidate("onnxruntime", {"model_path": model_path, "providers": ["CPUExecutionProvider"]},
                          "the CPU runs everywhere" if len(plan) == 0 else "CPU if the GPU providers fail"))
    return plan


def backend_class(name: str) -> type[Backend]:
    if name not in BACKEND_CLASSES:
        raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    module, cls = BACKEND_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def open_backend(name: str, model_path: str | Path, engine_path: str | Path | None = None,
                 log: Callable[[str], None] = print, threads: int | None = None) -> Backend:
    """Open the backend `name` for the model at `model_path`. For `torch`, a training checkpoint,
    or an exported ONNX model whose manifest names its torch weights (`engines/fetal_mtl.pt`).

    engine_path: the TensorRT engine (default: the model path with `.engine`).
    threads: ONNX Runtime's intra-op threads (default: physical cores); the others ignore it.
    """
    model_path = Path(model_path)
    if name == "auto":
        plan = plan_auto(model_path, engine_path, log)
        for i, candidate in enumerate(plan):
            try:
                backend = _open(candidate, log, threads)
            except BackendError as error:
                if i == len(plan) - 1:
                    raise
                log(f"backend auto: {candidate.backend} failed: {error}; trying the next")
                continue
            log(f"backend auto: chose {backend.name} because {candidate.reason}")
            return backend
    if name == "tensorrt":
        engine_path = Path(engine_path) if engine_path else default_engine_path(model_path)
        refusal = tensorrt_refusal(model_path, engine_path)
        if refusal is not None:
            raise BackendError(refusal)
        return _open(Candidate("tensorrt", {"engine_path": engine_path, "onnx_path": model_path}), log)
    if name == "onnxruntime":
        return _open(Candidate("onnxruntime", {"model_path": model_path, "providers": None}), log, threads)
    if name == "torch":
        device = "cuda" if _torch_cuda() else "cpu"
        log(f"backend torch on {device}" + (" (FP16)" if device == "cuda" else " (FP32; torch sees no CUDA GPU)"))
        if model_path.suffix == ".onnx":  # the network of an exported model: the weights shipped beside it
            model_path = shipped_torch_weights(model_path)
            log(f"backend torch: weights {model_path} (named and checked by the manifest)")
        return _open(Candidate("torch", {"checkpoint_path": model_path, "device": device}), log)
    backend_class(name)  # raises: unknown name
    raise AssertionError("unreachable")


def _open(candidate: Candidate, log: Callable[[str], None], threads: int | None = None) -> Backend:
    kwargs = dict(candidate.kwargs)
    if candidate.backend == "onnxruntime":
        kwargs["log"], kwargs["threads"] = log, threads
    return backend_class(candidate.backend)(**kwargs)


def _torch_cuda() -> bool:
    from edge_fetal.runtime.torch_backend import torch_cuda_available

    return torch_cuda_available()
