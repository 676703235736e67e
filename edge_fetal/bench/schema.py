"""The benchmark result format, shared by `edge-fetal bench` (CPU harness) and `benchmarks/gpu_latency.py`.

One JSON document per run:

    {"schema": "edge-fetal-bench/1", "tool": ..., "date": ..., "machine": {...}, "model": ...,
     "input": [1, S, S], "rows": [row, ...], "notes": [...], ...tool-specific sections}

A row names what ran (`runtime`, `precision`, `layout`, `kind`, `batch`, plus tool-specific keys)
followed by `latency_stats`: iterations, mean / p50 / p95 / p99 / max in ms, frames per second.
Percentiles are numpy's linear ones, so p50 <= p95 <= p99 always. Torch and CUDA are never
imported here: the GPU script adds its own fields to `machine_info()`.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path
from typing import Sequence

import numpy as np

SCHEMA = "edge-fetal-bench/1"
FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                     "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm", "bf16")
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def latency_stats(times_ms: Sequence[float], batch: int = 1) -> dict:
    """Iterations, mean / p50 / p95 / p99 / max (ms) and frames per second (from the mean) of call times."""
    values = np.asarray(times_ms, dtype=np.float64)
    if values.size == 0:
        return {"iterations": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None,
                "frames_per_s": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    mean = float(values.mean())
    return {"iterations": int(values.size), "mean_ms": round(mean, 3), "p50_ms": round(float(p50), 3),
            "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3), "max_ms": round(float(values.max()), 3),
            "frames_per_s": round(1e3 * batch / mean, 2) if mean > 0 else None}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or its native libraries do not load
        return None


def _cpu_identity(cpu: dict[str, str]) -> str | None:
    """`family 25 model 1 stepping 1` (x86) or `implementer 0x41 part 0xd42 variant 0x0` (Arm):
    what tells two hosts apart when the model name does not (a VM may show only "AMD EPYC")."""
    keys = (("cpu family", "family"), ("model", "model"), ("stepping", "stepping"))
    if "cpu family" not in cpu:
        keys = (("CPU implementer", "implementer"), ("CPU part", "part"), ("CPU variant", "variant"))
    parts = [f"{label} {cpu[key]}" for key, label in keys if cpu.get(key)]
    return " ".join(parts) or None


def _cpuidle_driver() -> str | None:
    """The kernel's idle driver (`haltpoll`, `intel_idle`, `none`, ...): how a core that waits for
    a frame sleeps, which sets what waking it costs (benchmarks/results/PROFILE.md)."""
    try:
        return Path("/sys/devices/system/cpu/cpuidle/current_driver").read_text().strip() or None
    except OSError:
        return None


def machine_info() -> dict:
    """CPU model and identity, cores, instruction-set flags that matter for inference, idle driver,
    OS and library versions."""
    from edge_fetal.runtime.onnxruntime_backend import physical_cores, usable_cpus

    cpu = _cpuinfo()
    flags = set((cpu.get("flags") or cpu.get("Features") or "").split())
    return {
        "cpu": cpu.get("model name") or cpu.get("Model") or platform.processor() or platform.machine(),
        "cpu_identity": _cpu_identity(cpu), "cpuidle_driver": _cpuidle_driver(),
        "architecture": platform.machine(),
        "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(), "physical_cores": physical_cores(),
        "cpu_flags": [flag for flag in FLAGS_OF_INTEREST if flag in flags],
        "platform": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "opencv": _version("cv2"), "onnxruntime": _version("onnxruntime"),
        "onnx": _version("onnx"), "torch": _version("torch"), "tensorrt": _version("tensorrt"),
    }


def machine_slug(machine: dict) -> str:
    """`amd-epyc-2c` / `nvidia-h200`: a file-name-safe name for the machine (GPU first when there is one)."""
    name = machine.get("gpu") or f"{machine.get('cpu', 'cpu')}-{machine.get('usable_cpus') or '?'}c"
    name = re.sub(r"\((r|tm)\)|cpu @.*|processor", "", str(name), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "machine"


def result_document(tool: str, machine: dict, model: dict | str, input_size: int | tuple[int, int], rows: list[dict],
                    notes: list[str], **sections) -> dict:
    """The shared top level; `sections` (settings, scaling, end_to_end, ...) follow `rows`.
    input_size: S for an S² input, or the (H, W) box timed."""
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    return {"schema": SCHEMA, "tool": tool, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine, "model": model, "input": [1, height, width], "rows": rows, **sections,
            "notes": notes}


def results_stem(prefix: str, machine: dict, when: datetime.date | None = None) -> str:
    """`bench_amd-epyc-2c_2026-11-28`."""
    return f"{prefix}_{machine_slug(machine)}_{(when or datetime.date.today()).isoformat()}"
