"""ONNX Runtime backend: CPU everywhere; CUDA / TensorRT execution providers where installed.

Providers are a constructor argument and never fall back silently: `providers=None` takes the
best available (TensorRT EP → CUDA EP → CPU) and says which and why through `log`; an explicit
list that cannot be honoured is a BackendError. Session options suit a small CPU (one thread per
physical core, sequential execution, memory arena and pattern on, and intra-op threads that sleep
instead of spinning between calls); on CUDA, I/O binding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from edge_fetal.errors import BackendError
from edge_fetal.runtime.backend import Backend, ModelOutputs

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = PREFERENCE[:2]
OUTPUT_NAMES = ("seg_labels", "plane_logits")
SPINNING_KEY = "session.intra_op.allow_spinning"


def best_providers(available: list[str]) -> list[str]:
    """The preferred available providers, best first, CPU last (it runs what the others cannot)."""
    return [p for p in PREFERENCE if p in available] or ["CPUExecutionProvider"]


def physical_cores() -> int:
    """Physical cores this process may use (SMT siblings counted once); ORT's best intra-op thread count."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open("/proc/cpuinfo") as handle:
            cores = {line.split(":")[1].strip() for line in handle if line.startswith("core id")}
            handle.seek(0)
            sockets = {line.split(":")[1].strip() for line in handle if line.startswith("physical id")}
    except OSError:
        return usable
    physical = len(cores) * max(len(sockets), 1)  # no "core id" lines on ARM: no SMT there
    return max(1, min(usable, physical)) if physical else usable


def _provider_options(provider: str, model_path: Path, input_size: int) -> dict:
    if provider == "TensorrtExecutionProvider":  # FP16, engine cached beside the model, batch 1..4
        shape = f"image:{{}}x1x{input_size}x{input_size}"
        return {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(model_path.parent / "ort_trt_cache"),
                "trt_profile_min_shapes": shape.format(1), "trt_profile_opt_shapes": shape.format(1),
                "trt_profile_max_shapes": shape.format(4)}
    return {}


class OnnxRuntimeBackend(Backend):
    """Runs the exported model (`image` → `seg_labels`, `plane_logits`) in an ORT session.

    providers: None = best available; else exactly these (missing ones are a BackendError).
    threads: intra-op threads on the CPU; None = physical cores.
    log: where the provider choice is reported (one line); None = kept in `self.choice` only.
    """

    name = "onnxruntime"

    def __init__(self, model_path: str | Path, providers: list[str] | None = None, threads: int | None = None,
                 log: Callable[[str], None] | None = None):
        import onnxruntime as ort

        model_path = Path(model_path)
        if not model_path.is_file():
            raise BackendError(f"model file not found: {model_path}")
        available = ort.get_available_providers()
        if providers is None:
            requested = best_providers(available)
            reason = f"best of the available {available}"
        else:
            missing = [p for p in providers if p not in available]
            if missing:
                raise BackendError(f"ONNX Runtime here lacks {missing} (available: {available}): "
                                   "install onnxruntime-gpu for CUDA/TensorRT, or ask for CPUExecutionProvider")
            requested, reason = list(providers), "as requested"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or physical_cores()
        # Spinning threads burn the cores the stream's measure and render threads need: on 2 cores,
        # spinning off raised the pipeline from 35-38 to 39-44 frames/s and cut live p99 from 88 to
        # 38 ms (benchmarks/results/PROFILE.md).
        options.add_session_config_entry(SPINNING_KEY, "0")
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = True
        try:
            size = _probe_input_size(ort, model_path) if "TensorrtExecutionProvider" in requested else 256
            chosen = [(p, _provider_options(p, model_path, size)) for p in requested]
            self._session = ort.InferenceSession(str(model_path), options, providers=chosen)
        except Exception as error:  # ORT raises its own types for corrupt or incompatible files
            raise BackendError(f"ONNX Runtime cannot load {model_path}: {error}") from None
        self.providers = self._session.get_providers()
        if self.providers[0] != requested[0]:  # ORT fell back by itself (e.g. CUDA libraries missing)
            raise BackendError(f"ONNX Runtime could not start {requested[0]} (it fell back to {self.providers[0]}): "
                               "check the CUDA/cuDNN/TensorRT libraries, or ask for CPUExecutionProvider")
        self.choice = (f"onnxruntime with {self.providers[0]} ({reason}), "
                       f"{options.intra_op_num_threads} intra-op thread(s)")
        if log:
            log(self.choice)
        self._input_size = _input_size(self._session)
        self._io_binding = self.providers[0] in GPU_PROVIDERS
        self.parallel_calls = not self._io_binding  # a CPU session's Run is thread-safe

    @property
    def input_size(self) -> int:
        return self._input_size

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._io_binding:  # input copied to the GPU once, outputs fetched once after the run
            binding = self._session.io_binding()
            binding.bind_cpu_input("image", batch)
            for name in OUTPUT_NAMES:
                binding.bind_output(name)
            self._session.run_with_iobinding(binding)
            seg_labels, plane_logits = binding.copy_outputs_to_cpu()
        else:
            seg_labels, plane_logits = self._session.run(list(OUTPUT_NAMES), {"image": batch})
        return ModelOutputs(seg_labels.astype(np.uint8, copy=False), plane_logits.astype(np.float32, copy=False))

    def close(self) -> None:
        self._session = None


def _input_size(session) -> int:
    """Side S of the model's `[N, 1, S, S]` input (256 when the graph leaves it symbolic)."""
    side = session.get_inputs()[0].shape[-1]
    return side if isinstance(side, int) else 256


def _probe_input_size(ort, model_path: Path) -> int:
    """The input side, read before the real session exists (the TensorRT EP needs it for its profile)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return _input_size(ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"]))
