"""Peak RSS of the engine on its own: a fresh process that opens one ONNX Runtime CPU session and
streams the benchmark frames through `run_stream` (overlay, mp4, events), as `edge-fetal stream`
would, then reports `ru_maxrss`. The benchmark process itself holds every variant at once (and
torch), so its own peak says little about what a deployed engine needs.

    python -m edge_fetal.bench.engine_rss MODEL.onnx --threads 2 --real 8 --sim-per-plane 2 --hold 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def measure_engine_rss(model_path: Path, threads: int, real: int, sim_per_plane: int, hold: int,
                       timeout_s: float = 300.0) -> dict:
    """Run this module in a child process; its JSON line, or {"error": ...} when it failed."""
    command = [sys.executable, "-m", "edge_fetal.bench.engine_rss", str(model_path), "--threads", str(threads),
               "--real", str(real), "--sim-per-plane", str(sim_per_plane), "--hold", str(hold)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              cwd=Path(__file__).resolve().parents[2])
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="peak RSS of one engine process")
    parser.add_argument("model", type=Path)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--real", type=int, default=8)
    parser.add_argument("--sim-per-plane", type=int, default=2)
    parser.add_argument("--hold", type=int, default=5)
    args = parser.parse_args(argv)

    from edge_fetal.bench.end_to_end import run_pipeline, scan
    from edge_fetal.bench.frames import bench_frames
    from edge_fetal.bench.variants import peak_rss_mib
    from edge_fetal.malloc import keep_freed_memory
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend, physical_cores
    from edge_fetal.stream.config import inference_plan

    keep_freed_memory()  # as `edge-fetal stream` runs, so that its peak is the engine's
    images, spacings = scan(bench_frames(args.real, args.sim_per_plane), args.hold)
    plan = inference_plan(live=False, cores=args.threads or physical_cores())  # as `edge-fetal stream` on a file
    with tempfile.TemporaryDirectory(prefix="edge-fetal-rss-") as out_dir, \
            OnnxRuntimeBackend(args.model, ["CPUExecutionProvider"], threads=plan.threads) as backend:
        result = run_pipeline(images, spacings, backend, Path(out_dir), workers=plan.workers)
    print(json.dumps({"peak_rss_mib": peak_rss_mib(), "model": str(args.model), "backend": "onnxruntime CPU",
                      "frames": result["frames"],
                      "inference_workers": plan.workers, "threads_each": plan.threads, "torch_imported": "torch" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
