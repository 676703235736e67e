"""Model latency on a CUDA machine: torch FP32 / FP16 (channels_last), TensorRT and ONNX Runtime GPU where installed.

Run by `benchmarks/gpu_check.sh`; finishes within `--budget-s`. The network is the shipped one:
the training checkpoint when given, else the torch weights shipped beside the ONNX file
(`engines/fetal_mtl.pt`), else `engines/manifest.json`'s architecture with random weights
(latency does not depend on the weights), else the default `MultiTaskUNet`.

Two kinds of rows:
  model   — the forward pass on a frame already on the GPU (torch only): what the network costs.
  backend — `Backend.infer` from a host array to host labels and logits: what the pipeline pays
            (H2D, argmax, D2H included). TensorRT and ONNX Runtime only have this kind.

Writes `benchmarks/results/gpu_<gpu-name>_<date>.json` (rows + machine) and prints a Markdown table.
Everything it builds (ONNX, engine) goes to a scratch folder under `benchmarks/results/` that it removes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_fetal.bench.schema import RESULTS_DIR, latency_stats, machine_info, result_document, results_stem  # noqa: E402
from edge_fetal.errors import EdgeFetalError  # noqa: E402

BATCHES = (1, 4)


def summarise(times_s: list[float], batch: int) -> dict:
    """The shared row statistics (edge_fetal.bench.schema): iterations, mean/p50/p95/p99/max ms, frames/s."""
    return latency_stats([t * 1e3 for t in times_s], batch)


def time_calls(call, batch: int, sync=lambda: None, warmup: int = 20, max_iters: int = 300, max_s: float = 3.0) -> dict:
    """Latency of `call()` (synchronised), `warmup` calls first, then up to `max_iters` or `max_s`."""
    for _ in range(warmup):
        call()
    sync()
    times, started = [], time.perf_counter()
    while len(times) < max_iters and time.perf_counter() - started < max_s:
        begin = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - begin)
    return summarise(times, batch)


def load_network(checkpoint: Path | None, manifest_path: Path):
    """(MultiTaskUNet in eval mode, input side, where it came from)."""
    from edge_fetal.engines import MODEL_NAME
    from edge_fetal.model.load import load_checkpoint_model, load_shipped_model
    from edge_fetal.model.unet import MultiTaskUNet

    if checkpoint and checkpoint.is_file():
        model, saved = load_checkpoint_model(checkpoint)
        return model, int(saved["config"]["data"]["image_size"]), f"checkpoint {checkpoint}"
    shipped = load_shipped_model(manifest_path.with_name(MODEL_NAME))  # checked by the manifest
    if shipped is not None:
        model, saved, weights = shipped
        return model, int(saved["config"]["data"]["image_size"]), f"shipped torch weights {weights.name}"
    if manifest_path.is_file():
        model_section = json.loads(manifest_path.read_text())["model"]
        architecture = {k: v for k, v in model_section["architecture"].items() if k != "name"}
        geometry = model_section["input"]
        size = int(geometry.get("size") or geometry["shape"][-1])  # a fitted-box model names its long side
        return MultiTaskUNet(**architecture).eval(), size, f"architecture of {manifest_path}, random weights"
    return MultiTaskUNet().eval(), 256, "default MultiTaskUNet, random weights (no checkpoint, no manifest)"


def machine(torch) -> dict:
    """The shared machine description (CPU, flags, versions) plus the GPU, CUDA and cuDNN."""
    props = torch.cuda.get_device_properties(0)
    return {**machine_info(), "gpu": torch.cuda.get_device_name(0), "compute_capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}


def torch_rows(torch, model, size: int, deadline: float) -> list[dict]:
    from edge_fetal.runtime.torch_backend import TorchBackend

    rows = []
    for fp16 in (False, True):
        network = copy.deepcopy(model)  # moved to the GPU (and halved) in place: keep `model` for the ONNX export
        backend = TorchBackend.from_model(network, size, device="cuda", fp16=fp16)
        precision = "fp16" if fp16 else "fp32"
        for batch in BATCHES:
            if time.monotonic() > deadline:
                return rows
            frames = np.random.default_rng(0).random((batch, 1, size, size), dtype=np.float32)
            image = torch.from_numpy(frames).cuda().to(torch.float16 if fp16 else torch.float32,
                                                       memory_format=torch.channels_last)

            def forward():
                with torch.inference_mode():
                    network(image)

            rows.append({"runtime": "torch", "precision": precision, "layout": "channels_last", "kind": "model",
                         "batch": batch, **time_calls(forward, batch, sync=torch.cuda.synchronize)})
            rows.append({"runtime": "torch", "precision": precision, "layout": "channels_last", "kind": "backend",
                         "batch": batch, **time_calls(lambda: backend.infer(frames), batch)})
        backend.close()
    return rows


def backend_rows(make_backend, label: dict, size: int, deadline: float) -> list[dict]:
    rows = []
    with make_backend() as backend:
        for batch in BATCHES:
            if time.monotonic() > deadline:
                break
            frames = np.random.default_rng(0).random((batch, 1, size, size), dtype=np.float32)
            rows.append({**label, "kind": "backend", "batch": batch, **time_calls(lambda: backend.infer(frames), batch)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="training checkpoint (default: the shipped torch weights)")
    parser.add_argument("--onnx", type=Path, default=REPO / "engines" / "fetal_mtl.onnx")
    parser.add_argument("--budget-s", type=float, default=240.0, help="stop starting new rows after this long")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/gpu_<gpu>_<date>.json)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget_s

    import torch

    if not torch.cuda.is_available():
        print("gpu_latency: torch sees no CUDA GPU; nothing to measure", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    model, size, source = load_network(args.checkpoint, REPO / "engines" / "manifest.json")
    info = machine(torch)
    print(f"{info['gpu']} (sm {info['compute_capability']}), torch {info['torch']}, CUDA {info['cuda']}; model: {source}, {size}px")
    rows = torch_rows(torch, model, size, deadline)
    notes = []
    scratch = REPO / "benchmarks" / "results" / f"_scratch_{os.getpid()}"
    try:
        onnx_path = args.onnx
        if not onnx_path.is_file() or args.checkpoint:
            try:
                from export.onnx_export import export_onnx

                onnx_path = export_onnx(model, scratch / "fetal_mtl.onnx", size)
            except ImportError as error:
                onnx_path = None
                notes.append(f"no ONNX model to run ({error}): TensorRT / ONNX Runtime rows skipped")
        if onnx_path is not None and info["tensorrt"] and time.monotonic() < deadline:
            try:
                from edge_fetal.runtime.tensorrt_backend import TensorRTBackend
                from export.tensorrt_build import build_engine

                engine = build_engine(onnx_path, scratch / "fetal_mtl.engine", fp16=True, max_batch=max(BATCHES))
                for graph in (False, True):
                    rows += backend_rows(lambda: TensorRTBackend(engine, onnx_path=onnx_path, use_cuda_graph=graph),
                                         {"runtime": "tensorrt", "precision": "fp16", "cuda_graph": graph}, size, deadline)
            except EdgeFetalError as error:
                notes.append(f"TensorRT rows skipped: {error}")
        elif not info["tensorrt"]:
            notes.append("TensorRT is not installed here: no TensorRT rows")
        if onnx_path is not None and info["onnxruntime"]:
            import onnxruntime

            from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                try:
                    rows += backend_rows(lambda: OnnxRuntimeBackend(onnx_path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"]),
                                         {"runtime": "onnxruntime", "provider": "CUDA", "precision": "fp32"}, size, deadline)
                except EdgeFetalError as error:
                    notes.append(f"ONNX Runtime CUDA rows skipped: {error}")
            else:
                notes.append("onnxruntime-gpu is not installed here: no ONNX Runtime GPU rows")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if time.monotonic() > deadline:
        notes.append(f"time budget of {args.budget_s:.0f} s reached: some rows were not measured")
    out = args.out or RESULTS_DIR / f"{results_stem('gpu', info)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = result_document("benchmarks/gpu_latency.py", info, source, size, rows, notes)
    out.write_text(json.dumps(report, indent=2) + "\n")

    print("\n| runtime | precision | kind | batch | p50 ms | p99 ms | frames/s |\n|---|---|---|---|---|---|---|")
    for row in rows:
        runtime = row["runtime"] + (" +graph" if row.get("cuda_graph") else "") + (f" {row['provider']}" if "provider" in row else "")
        print(f"| {runtime} | {row['precision']} | {row['kind']} | {row['batch']} | {row['p50_ms']} | {row['p99_ms']} | {row['frames_per_s']} |")
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
