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


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity where the OS tells it, else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores this process may use (SMT siblings counted once); ORT's best intra-op thread count."""
    usable = usable_cpus()
    try:
        with open("/proc/cpuinfo") as handle:
            cores = {line.split(":")[1].strip() for line in handle if line.startswith("core id")}
            handle.seek(0)
            sockets = {line.split(":")[1].strip() for line in handle if line.startswith("physical id")}
    except OSError:
        return usable
    physical = len(cores) * max(len(sockets), 1)  # no "core id" lines on ARM: no SMT there
    return max(1, min(usable, physical)) if physical else usable


def _provider_options(provider: str, model_path: Path, input_size: int, stride: int | None) -> dict:
    if provider == "TensorrtExecutionProvider":  # FP16, engine cached beside the model, batch 1..4
        full = f"image:{{}}x1x{input_size}x{input_size}"
        smallest = full if stride is None else f"image:1x1x{stride}x{stride}"  # fitted boxes: any size up to S
        return {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(model_path.parent / "ort_trt_cache"),
                "trt_profile_min_shapes": smallest.format(1), "trt_profile_opt_shapes": full.format(1),
                "trt_profile_max_shapes": full.format(4)}
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
            size, stride = probe_geometry(model_path) if "TensorrtExecutionProvider" in requested else (256, None)
            chosen = [(p, _provider_options(p, model_path, size, stride)) for p in requested]
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
        self._input_size, self.input_stride = input_geometry(self._session)
        self._io_binding = self.providers[0] in GPU_PROVIDERS
        self.parallel_calls = not self._io_binding  # a CPU session's Run is thread-safe

    @property
    def input_size(self) -> int:
        return self._input_size

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        self.check_input(batch)
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


def input_geometry(session) -> tuple[int, int | None]:
    """(S, stride) of the model's input. A graph fixed at `[N, 1, S, S]` has no stride; one with
    symbolic H, W takes any multiple of the stride its metadata names, up to its `input_size`."""
    shape = session.get_inputs()[0].shape
    if all(isinstance(side, int) for side in shape[-2:]):
        return int(shape[-1]), None
    metadata = session.get_modelmeta().custom_metadata_map
    try:
        return int(metadata["input_size"]), int(metadata["input_stride"])
    except (KeyError, ValueError):
        raise BackendError("the model's input height and width are symbolic but its metadata names no "
                           "input_size / input_stride: re-export it with `edge-fetal export onnx`") from None


def probe_geometry(model_path: str | Path) -> tuple[int, int | None]:
    """The input geometry of an ONNX file, read before the real session exists (the TensorRT EP
    and the TensorRT builder need it for their profiles)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return input_geometry(ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"]))
