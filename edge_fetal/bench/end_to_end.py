"""End to end, capture → result: the real pipeline (`run_stream`, offline mode, fusion, overlay,
mp4, events, report) with the best backend, against the naive baseline (naive.py), in turns.
The same pipeline also streams a recorded scan from an mp4 file, decoding included
(`offline_file`): the frames held in memory skip the decode that every file costs.

Definitions (the same clock, `time.monotonic` / `perf_counter`, both in ms):
- capture_to_result: from the moment the frame is read from the source to its fused result.
  The pipeline reads ahead: offline, the grabber stamps a frame when it reads it and then waits to
  place it in the one-slot mailbox, so a frame waits while up to two earlier ones are processed;
  the naive loop reads a frame only when it is ready for it.
- live: the same frames paced like a live probe at LIVE_FPS (`--realtime`): a frame is stamped
  when it arrives, as from a capture card, so its capture→result is the latency a sonographer
  sees; frames that arrive while the engine is busy are dropped and counted.
- processing: the engine's own stages for one frame (pipeline: preprocess + infer + measure + fuse;
  naive: everything up to the measurement), i.e. without any wait for a previous frame.
- frames_per_s: frames over the wall time of the whole run (mp4 finalised included; for the
  file, opening and decoding it too).
- naive loop_ms: one loop iteration, drawing and writing included.
- cpu_ms_per_frame / cores_busy: the CPU time each run's report gives (`stream.cpu_s`: the whole
  benchmark process, every thread: grabber, inference workers, render thread, encoder) per
  frame, and that CPU time over the wall time.
  When cores_busy nears the usable CPUs, frames/s is bound by CPU per frame, not by waiting:
  frames/s = 1000 x cores_busy / cpu_ms_per_frame.
- video_encoder: what encoded the offline runs' annotated.mp4 (`stream.video_encoder`): mp4v on
  the CPU, or on a Jetson its hardware encoder, whose frames/s then leave that work out.
Ratios are speed-ups of the pipeline over the naive loop (> 1: the pipeline is better).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edge_fetal.bench.frames import BenchFrame, ScanFile
from edge_fetal.bench.naive import NaiveRun, run_naive
from edge_fetal.bench.schema import latency_stats

ENGINE_STAGES = ("preprocess", "infer", "measure", "fuse")
LIVE_FPS = 30.0  # a typical B-mode frame rate


def scan(frames: list[BenchFrame], hold: int) -> tuple[list[np.ndarray], list[float | None]]:
    """The benchmark frames as a scan: each frame held for `hold` consecutive frames (planes settle)."""
    images = [f.image for f in frames for _ in range(hold)]
    spacings = [f.mm_per_px for f in frames for _ in range(hold)]
    return images, spacings


def run_pipeline(images: list[np.ndarray], spacings: list[float | None], backend, out_dir: Path,
                 live_fps: float | None = None, workers: int = 1) -> dict:
    """One `run_stream` over the frames in memory, offline (every frame, as fast as it goes, with
    `workers` frames in the model at once) or, with `live_fps`, paced like a live source; per-frame
    latencies read back from events.jsonl."""
    from edge_fetal.calibration import PixelSpacing
    from edge_fetal.stream import StreamConfig
    from edge_fetal.stream.readers import ArrayReader
    from edge_fetal.stream.sources import FrameSource

    reader = ArrayReader(images, fps=live_fps or 25.0, description="benchmark frames in memory",
                         spacings=[PixelSpacing(s, "benchmark frame") if s else None for s in spacings])
    config = StreamConfig(realtime=live_fps is not None, inference_workers=workers)
    return _timed_stream(FrameSource(reader), backend, config, out_dir)


def run_file_pipeline(path: Path, backend, out_dir: Path, workers: int = 1) -> dict:
    """One `run_stream` over a video file, every frame as fast as it goes, as `edge-fetal stream
    --source FILE` runs it: the grabber thread decodes the file beside the engine's own work."""
    from edge_fetal.stream import StreamConfig

    return _timed_stream(str(path), backend, StreamConfig(inference_workers=workers), out_dir)


def _timed_stream(source, backend, config, out_dir: Path) -> dict:
    from edge_fetal.stream import run_stream
    from edge_fetal.stream.sinks import EVENTS_NAME

    started = time.perf_counter()
    report = run_stream(source, backend, config, out_dir)
    wall = time.perf_counter() - started
    events = [json.loads(line) for line in (out_dir / EVENTS_NAME).read_text().splitlines() if line.strip()]
    stream = report["stream"]
    return {"wall_s": wall, "cpu_s": stream["cpu_s"], "frames": stream["frames_processed"], "report": report,
            "dropped": stream["frames_dropped"],
            "capture_to_result": [e["latency_ms"]["end_to_end"] for e in events],
            "processing": [sum(e["latency_ms"][s] for s in ENGINE_STAGES) for e in events],
            "stages": {s: [e["latency_ms"][s] for e in events] for s in ENGINE_STAGES}}


@dataclass
class OfflineEngine:
    """What the offline pipeline runs on, as `edge-fetal stream` sets it up for a file
    (`stream.config.inference_plan`): a backend and how many frames it infers at once."""

    backend: object
    workers: int
    threads_each: int


def compare_end_to_end(frames: list[BenchFrame], backend, backend_name: str, network, input_size: int,
                       out_dir: Path, rounds: int, hold: int, step: Callable[[str], None] = lambda _: None,
                       profile_path: Path | None = None, offline: OfflineEngine | None = None,
                       scan_file: ScanFile | None = None) -> dict:
    """`rounds` x (pipeline run, file run, naive run, live run), alternating the order; the
    `end_to_end` JSON section. The live run uses `backend`; the offline runs `offline` (default:
    `backend`, one worker); the file run streams `scan_file` (none without it)."""
    offline = offline or OfflineEngine(backend, 1, 0)
    images, spacings = scan(frames, hold)
    runs: dict[str, list[dict]] = {"pipeline": [], "file": [], "live": []}
    naive = NaiveRun()
    kinds = ("pipeline", "file", "naive", "live") if scan_file is not None else ("pipeline", "naive", "live")
    for r in range(rounds):
        for which in (kinds if r % 2 == 0 else kinds[::-1]):
            run_dir = out_dir / f"{which}_{r}"
            run_dir.mkdir(parents=True, exist_ok=True)
            if which == "pipeline":
                runs[which].append(run_pipeline(images, spacings, offline.backend, run_dir, workers=offline.workers))
            elif which == "file":
                runs[which].append(run_file_pipeline(scan_file.path, offline.backend, run_dir, workers=offline.workers))
            elif which == "live":
                runs[which].append(run_pipeline(images, spacings, backend, run_dir, live_fps=LIVE_FPS))
            elif network is not None:
                naive.add(run_naive(images, spacings, network, input_size, run_dir / "naive.mp4"))
            step(which)
    section = {
        "frames_per_run": len(images), "rounds": rounds, "hold": hold, "backend": backend_name,
        "pipeline": _pipeline_section(runs["pipeline"], offline), "live": _live_section(runs["live"]),
        "offline_file": _file_section(scan_file, runs["file"], offline), "naive": None, "ratio": None,
    }
    if naive.result_ms:
        section["naive"] = _naive_section(naive)
        section["ratio"] = _ratios(section["pipeline"], section["naive"])
    if profile_path is not None:
        section["profile"] = profile_pipeline(images, spacings, offline, out_dir / "profiled", profile_path)
    return section


def _joined(runs: list[dict], key: str) -> list[float]:
    return [value for run in runs for value in run[key]]


def _frames_per_s(runs: list[dict]) -> float | None:
    wall = sum(run["wall_s"] for run in runs)
    return round(sum(run["frames"] for run in runs) / wall, 2) if wall else None


def _cpu_use(runs: list[dict]) -> dict:
    """CPU time of the benchmark process per frame over the runs, and the cores it kept busy on average."""
    frames, wall, cpu = (sum(run[key] for run in runs) for key in ("frames", "wall_s", "cpu_s"))
    return {"cpu_ms_per_frame": round(1000.0 * cpu / frames, 2) if frames else None,
            "cores_busy": round(cpu / wall, 3) if wall else None}


def _video_encoder(runs: list[dict]) -> str | None:
    """What encoded the runs' annotated.mp4 (mp4v on the CPU, or a Jetson's hardware encoder): part
    of what a frames/s figure includes."""
    used = sorted({run["report"]["stream"]["video_encoder"] for run in runs} - {None})
    return ", ".join(used) or None


def _frames_per_s_by_run(runs: list[dict]) -> list[float]:
    """Each run's own frames/s: how far one run strays from the next on this machine."""
    return [round(run["frames"] / run["wall_s"], 2) for run in runs if run["wall_s"] > 0]


def _pipeline_section(runs: list[dict], offline: OfflineEngine) -> dict:
    """The offline pipeline from memory: frames/s, latencies, its stages and the work outside the model."""
    stages = {stage: [v for run in runs for v in run["stages"][stage]] for stage in ENGINE_STAGES}
    render_p50, draw_p50 = (_median_or_none([run["report"]["latency_ms"][part]["p50_ms"] for run in runs
                                             if run["report"]["latency_ms"][part]["p50_ms"] is not None])
                            for part in ("sink", "draw"))
    return {"frames_per_s": _frames_per_s(runs), "frames_per_s_by_run": _frames_per_s_by_run(runs),
            "capture_to_result": latency_stats(_joined(runs, "capture_to_result")),
            "processing": latency_stats(_joined(runs, "processing")),
            "stages": {stage: latency_stats(values) for stage, values in stages.items()},
            "render_p50_ms": round(render_p50, 3) if render_p50 is not None else None,
            "inference_workers": offline.workers, "threads_each": offline.threads_each or None,
            "video_encoder": _video_encoder(runs), **_cpu_use(runs),
            "work_shares": work_shares(stages, render_p50, draw_p50)}


def _live_section(runs: list[dict]) -> dict:
    by_run = [latency_stats(run["capture_to_result"]) for run in runs if run["capture_to_result"]]
    return {"source_fps": LIVE_FPS, "frames_processed": int(sum(run["frames"] for run in runs)),
            "frames_dropped": int(sum(run["dropped"] for run in runs)),
            "capture_to_result": latency_stats(_joined(runs, "capture_to_result")),
            "capture_to_result_p50_by_run": [stats["p50_ms"] for stats in by_run],
            "capture_to_result_p99_by_run": [stats["p99_ms"] for stats in by_run],
            "processing": latency_stats(_joined(runs, "processing")), **_cpu_use(runs)}


def _file_section(scan_file: ScanFile | None, runs: list[dict], offline: OfflineEngine) -> dict | None:
    """The `offline_file` JSON section: frames/s over the file runs, and their processing latency."""
    if scan_file is None or not runs:
        return None
    return {"frames_per_s": _frames_per_s(runs), "frames_per_s_by_run": _frames_per_s_by_run(runs),
            "frames_per_run": max(run["frames"] for run in runs),
            "runs": len(runs), "source": scan_file.description,
            "processing": latency_stats(_joined(runs, "processing")),
            "inference_workers": offline.workers, "threads_each": offline.threads_each or None,
            "video_encoder": _video_encoder(runs), **_cpu_use(runs)}


def _naive_section(naive: NaiveRun) -> dict:
    return {"frames_per_s": round(len(naive.result_ms) / naive.wall_s, 2),
            "capture_to_result": latency_stats(naive.result_ms), "processing": latency_stats(naive.result_ms),
            "loop": latency_stats(naive.loop_ms),
            "runtime": "torch eager fp32 NCHW, float logits, full-resolution argmax, drawing in the loop"}


def _ratios(pipeline: dict, naive: dict) -> dict:
    naive_p99 = naive["capture_to_result"]["p99_ms"]
    return {"throughput": _ratio(pipeline["frames_per_s"], naive["frames_per_s"]),
            "p99_capture_to_result": _ratio(naive_p99, pipeline["capture_to_result"]["p99_ms"]),
            "p99_processing": _ratio(naive_p99, pipeline["processing"]["p99_ms"])}


def work_shares(stages: dict[str, list[float]], render_p50_ms: float | None, draw_p50_ms: float | None = None) -> dict:
    """How the engine's per-frame work splits between the model and the rest (grab excluded: the
    benchmark frames are in memory). `critical_path`: of preprocess + infer + measure + fuse, the
    part outside the model; `with_drawing`: the same with the render thread drawing the overlay;
    `all_work`: with its whole time, drawing and mp4 encoding. The render thread runs beside the
    next frame's inference on the same cores. With one single-threaded model call per worker
    (offline), every stage runs on one core, so these are shares of CPU time."""
    mean = {stage: float(np.mean(values)) if values else 0.0 for stage, values in stages.items()}
    engine = sum(mean.values())
    render, draw = render_p50_ms or 0.0, draw_p50_ms or 0.0
    if engine <= 0:
        return {"critical_path": None, "with_drawing": None, "all_work": None}
    outside = engine - mean["infer"]
    return {"critical_path": round(outside / engine, 3), "with_drawing": round((outside + draw) / (engine + draw), 3),
            "all_work": round((outside + render) / (engine + render), 3),
            "mean_ms": {**{k: round(v, 3) for k, v in mean.items()}, "render_p50": round(render, 3), "draw_p50": round(draw, 3)}}


def _median_or_none(values: list[float]) -> float | None:
    """The median of the runs' p50s (one per run), None when no run had any."""
    return float(np.median(values)) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def profile_pipeline(images, spacings, offline: OfflineEngine, out_dir: Path, profile_path: Path, top: int = 25) -> str:
    """cProfile over one pipeline run (the calling thread, which measures and fuses; the inference,
    grabber and render threads are not profiled, so the model shows as time waiting for results);
    the top-`top` functions by cumulative time are written to `profile_path`."""
    import cProfile
    import io
    import pstats

    out_dir.mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile()
    profiler.enable()
    run_pipeline(images, spacings, offline.backend, out_dir, workers=offline.workers)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    header = (f"cProfile of one run_stream over {len(images)} frames, backend {getattr(offline.backend, 'name', '?')}, "
              f"{offline.workers} inference worker(s);"
              f" measure/fuse thread only (the model runs on the inference thread: waiting for it shows in take);"
              f" top {top} by cumulative time\n")
    profile_path.write_text(header + text.getvalue())
    return str(profile_path)
