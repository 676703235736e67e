"""Open every variant this machine can run, each on the same frames; skip the others with a note.

Model-only (batch 1, the model's input size): torch eager (CPU, channels_last), ONNX Runtime fp32
and INT8 (QDQ, calibrated on the benchmark frames) on the CPU; where present TensorRT FP16, ONNX
Runtime CUDA and torch CUDA FP16. Scaling (ONNX Runtime fp32 on the CPU, the shipping CPU path):
other input sizes, batches, and N concurrent streams each with its own session and cores/N threads.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from edge_fetal.bench.frames import BenchFrame, model_inputs
from edge_fetal.bench.models import ModelUnderTest, onnx_at_size
from edge_fetal.bench.variants import StreamsVariant, Variant, batches_of, current_rss_mib
from edge_fetal.errors import EdgeFetalError

CPU = ["CPUExecutionProvider"]


def _grown(before: float | None) -> float | None:
    """MiB of resident memory added since `before` (what opening a backend cost)."""
    now = current_rss_mib()
    return round(now - before, 1) if now is not None and before is not None else None


def _ort(path: Path, threads: int, providers=CPU):
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, providers=providers, threads=threads)


def _ort_label(precision: str, size: int, threads: int, provider: str = "CPU") -> dict:
    return {"runtime": "onnxruntime", "provider": provider, "precision": precision, "layout": "NCHW",
            "device": "cpu" if provider == "CPU" else "cuda", "input_size": size, "streams": 1, "intra_op_threads": threads}


def model_variants(model: ModelUnderTest, frames: list[BenchFrame], scratch: Path, threads: int,
                   notes: list[str], log: Callable[[str], None] = lambda _: None) -> list[Variant]:
    """The model-only variants, batch 1 at the model's own input size; the first is ORT fp32 on the CPU."""
    size = model.input_size
    inputs = model_inputs(frames, model.box(size))
    before = current_rss_mib()
    fp32 = _ort(model.onnx_path, threads)
    variants = [Variant("ort-cpu-fp32", "model", _ort_label("fp32", size, threads), fp32.infer, inputs, fp32.close,
                        backend=fp32, rss_delta_mib=_grown(before), model_path=model.onnx_path)]

    log("quantising to INT8 (calibrated on the benchmark frames)")
    try:
        from export.int8 import quantise_int8

        int8_path = quantise_int8(model.onnx_path, scratch / "int8.onnx", [f.image for f in frames])
        before = current_rss_mib()
        int8 = _ort(int8_path, threads)
        variants.append(Variant("ort-cpu-int8", "model", _ort_label("int8 (QDQ)", size, threads), int8.infer, inputs,
                                int8.close, backend=int8, rss_delta_mib=_grown(before), model_path=int8_path))
    except Exception as error:  # quantisation raises many types; the run goes on without this row, and says why
        notes.append(f"no INT8 row: {type(error).__name__}: {error}")

    if model.network is not None:
        import torch

        from edge_fetal.runtime.torch_backend import TorchBackend

        before = current_rss_mib()
        eager = TorchBackend.from_model(copy.deepcopy(model.network), size, device="cpu", input_stride=model.input_stride)
        variants.append(Variant("torch-cpu-fp32", "model",
                                {"runtime": "torch", "provider": "eager", "precision": "fp32", "layout": "channels_last",
                                 "device": "cpu", "input_size": size, "streams": 1,
                                 "intra_op_threads": torch.get_num_threads()}, eager.infer, inputs, eager.close, backend=eager,
                                rss_delta_mib=_grown(before)))
    else:
        notes.append(f"no torch rows: torch network {model.torch_weights}")
    variants += gpu_variants(model, inputs, scratch, notes, log)
    return variants


def gpu_variants(model: ModelUnderTest, inputs, scratch: Path, notes: list[str], log) -> list[Variant]:
    """TensorRT FP16, ONNX Runtime CUDA and torch CUDA FP16 where this machine has them (host → host timing)."""
    from edge_fetal.runtime import select

    size, variants = model.input_size, []
    gpu_label = {"device": "cuda", "input_size": size, "streams": 1, "intra_op_threads": None}
    refusal = None
    has_tensorrt = select.tensorrt_version() is not None
    if has_tensorrt and select.gpu_identity() is not None:
        try:
            from edge_fetal.runtime.tensorrt_backend import TensorRTBackend
            from export.tensorrt_build import build_engine

            log("building a TensorRT FP16 engine")
            engine = build_engine(model.onnx_path, scratch / "bench.engine", fp16=True, max_batch=4, log=log)
            trt = TensorRTBackend(engine, onnx_path=model.onnx_path)
            variants.append(Variant("tensorrt-fp16", "model", {"runtime": "tensorrt", "provider": "TensorRT", "precision": "fp16",
                                                                "layout": "NCHW", **gpu_label}, trt.infer, inputs, trt.close, backend=trt))
        except Exception as error:  # EdgeFetalError, or TensorRT's own
            refusal = f"no TensorRT row: {type(error).__name__}: {error}"
    else:
        refusal = ("no TensorRT row: cuda-python sees no CUDA GPU here" if has_tensorrt
                   else "no TensorRT row: TensorRT (with cuda-python) is not installed here")
    if refusal:
        notes.append(refusal)
    if "CUDAExecutionProvider" in select.ort_providers():
        try:
            cuda = _ort(model.onnx_path, 1, ["CUDAExecutionProvider", "CPUExecutionProvider"])
            variants.append(Variant("ort-cuda-fp32", "model", _ort_label("fp32", size, None, "CUDA") | gpu_label,
                                    cuda.infer, inputs, cuda.close, backend=cuda))
        except EdgeFetalError as error:
            notes.append(f"no ONNX Runtime CUDA row: {error}")
    if model.network is not None:
        from edge_fetal.runtime.torch_backend import TorchBackend, torch_cuda_available

        if torch_cuda_available():
            gpu = TorchBackend.from_model(copy.deepcopy(model.network), size, device="cuda", input_stride=model.input_stride)
            variants.append(Variant("torch-cuda-fp16", "model", {"runtime": "torch", "provider": "eager", "precision": "fp16",
                                                                 "layout": "channels_last", **gpu_label}, gpu.infer, inputs, gpu.close, backend=gpu))
    return variants


def scaling_variants(model: ModelUnderTest, frames: list[BenchFrame], fp32: Variant, scratch: Path, threads: int,
                     sizes: list[int], batches: list[int], streams: list[int], notes: list[str]) -> dict[str, dict[int, Variant]]:
    """{"input_size": {S: variant}, "batch": {B: variant}, "streams": {N: variant}}; the point equal to
    the model-only ORT fp32 row (own size, batch 1, one stream) reuses that variant."""
    size = model.input_size
    out: dict[str, dict[int, Variant]] = {"input_size": {}, "batch": {}, "streams": {}}
    for side in sizes:
        if side == size:
            out["input_size"][side] = fp32
            continue
        if side % model.size_multiple:
            notes.append(f"input size {side} skipped: not a multiple of {model.size_multiple}")
            continue
        before = current_rss_mib()
        box = model.box(side)
        backend = _ort(onnx_at_size(model.onnx_path, scratch / f"size{side}.onnx", box), threads)
        out["input_size"][side] = Variant(f"ort-cpu-fp32-{side}px", "size", _ort_label("fp32", side, threads),
                                          backend.infer, model_inputs(frames, box), backend.close, backend=backend,
                                          rss_delta_mib=_grown(before))
    for batch in batches:
        out["batch"][batch] = fp32 if batch == 1 else Variant(
            f"ort-cpu-fp32-batch{batch}", "batch", _ort_label("fp32", size, threads), fp32.infer, batches_of(fp32.inputs, batch))
    for count in streams:
        if count == 1:
            out["streams"][count] = fp32
            continue
        per_stream, before = max(1, threads // count), current_rss_mib()
        backends = [_ort(model.onnx_path, per_stream) for _ in range(count)]
        label = _ort_label("fp32", size, per_stream) | {"streams": count}
        out["streams"][count] = StreamsVariant(f"ort-cpu-fp32-{count}streams", label, backends, fp32.inputs)
        out["streams"][count].rss_delta_mib = _grown(before)
    return out
