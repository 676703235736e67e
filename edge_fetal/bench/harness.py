"""`run_benchmark(options)`: one run that times every variant side by side on the same frames.

Order of a run: machine description → model and frames → peak matmul → open every variant (INT8
built into a temp folder) and warm it up → all variants interleaved round-robin → peak again →
end to end (pipeline vs naive baseline, in turns; the same pipeline on a recorded scan file) →
JSON + Markdown + PNG in the results folder, plus `latest.*` copies. Nothing is written into the
repository except the results.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from edge_fetal.bench import schema
from edge_fetal.bench.frames import ScanFile
from edge_fetal.bench.variants import Variant, interleave, peak_rss_mib
from edge_fetal.errors import EdgeFetalError


@dataclass(frozen=True)
class BenchOptions:
    """What to run. None means the default of the mode: full (or `quick`: a smoke run in seconds)."""

    model: Path | None = None  # default: engines/fetal_mtl.onnx
    checkpoint: Path | None = None  # torch weights for the eager rows / naive baseline (default: random)
    out_dir: Path | None = None  # default: benchmarks/results
    quick: bool = False
    threads: int | None = None  # default: physical cores
    rounds: int | None = None
    iterations: int | None = None  # calls per variant per round
    warmup: int | None = None
    real_frames: int | None = None
    sim_per_plane: int | None = None
    sizes: tuple[int, ...] = (192, 256, 320, 384)
    batches: tuple[int, ...] = (1, 2, 4)
    streams: tuple[int, ...] = (1, 2, 4)
    e2e_rounds: int | None = None
    hold: int | None = None  # each frame repeated this often in the end-to-end scan
    peak_n: int | None = None  # side of the peak matmul
    profile: bool = False
    scan: Path | None = None  # a recorded scan (video file) for the offline run from a file; default: a simulated sweep
    engine_rss: bool = True  # peak RSS of a separate engine process (ONNX Runtime CPU, the faster of fp32 / INT8)
    plot: bool = True
    latest: bool = True
    show_progress: bool = True

    def resolved(self) -> "BenchOptions":
        quick = self.quick
        pick = lambda value, full, fast: value if value is not None else (fast if quick else full)  # noqa: E731
        from edge_fetal.runtime.onnxruntime_backend import physical_cores

        return BenchOptions(
            model=Path(self.model) if self.model else _default_model(), checkpoint=self.checkpoint,
            out_dir=Path(self.out_dir) if self.out_dir else schema.RESULTS_DIR, quick=quick,
            threads=self.threads or physical_cores(), rounds=pick(self.rounds, 10, 2),
            iterations=pick(self.iterations, 20, 2), warmup=pick(self.warmup, 5, 1),
            real_frames=pick(self.real_frames, 8, 2), sim_per_plane=pick(self.sim_per_plane, 2, 1),
            sizes=tuple(self.sizes), batches=tuple(self.batches), streams=tuple(self.streams),
            e2e_rounds=pick(self.e2e_rounds, 3, 1), hold=pick(self.hold, 5, 1), peak_n=pick(self.peak_n, 2048, 384),
            profile=self.profile, scan=Path(self.scan) if self.scan else None, engine_rss=self.engine_rss, plot=self.plot, latest=self.latest, show_progress=self.show_progress)


# `--quick`: a sweep of a few frames per plane instead of the 140 of the full scan
QUICK_SCAN = (("head", 4), ("abdomen", 4), ("femur", 4))


def _default_model() -> Path:
    from edge_fetal.engines import ENGINES_DIR, MODEL_NAME

    return ENGINES_DIR / MODEL_NAME


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class _Bar:
    """tqdm on a terminal, nothing otherwise (as `edge_fetal.progress`)."""

    total: int
    enabled: bool
    _bar: object = field(default=None, init=False)

    def __post_init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=self.total, desc="bench", file=sys.stderr, leave=False,
                         disable=not (self.enabled and sys.stderr.isatty()))

    def step(self, name: str) -> None:
        self._bar.set_postfix_str(name, refresh=False)
        self._bar.update()

    def close(self) -> None:
        self._bar.close()


def _probe(frames, model_path: Path):
    """Two benchmark frames preprocessed for the model: the batch a checkpoint is checked against the ONNX file on."""
    import numpy as np

    from edge_fetal.bench.frames import model_inputs
    from edge_fetal.bench.models import model_box
    from edge_fetal.runtime.onnxruntime_backend import probe_geometry

    if not Path(model_path).is_file():
        return None  # load_model_under_test says so
    return np.concatenate(model_inputs(frames[:1] + frames[-1:], model_box(*probe_geometry(model_path))))


@contextmanager
def _offline_engine(best: Variant, cores: int):
    """The offline pipeline's engine as `edge-fetal stream` sets it up for a file: for an ONNX
    Runtime CPU variant, its own session with the plan's threads; otherwise the variant's backend."""
    from edge_fetal.bench.end_to_end import OfflineEngine
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from edge_fetal.stream.config import inference_plan

    plan = inference_plan(live=False, cores=cores)
    if plan.workers == 1 or best.model_path is None or not getattr(best.backend, "parallel_calls", False):
        yield OfflineEngine(best.backend, 1, cores)
        return
    with OnnxRuntimeBackend(best.model_path, ["CPUExecutionProvider"], threads=plan.threads) as backend:
        yield OfflineEngine(backend, plan.workers, plan.threads)


def check_scan(path: Path) -> None:
    """Refuse a `--scan` that OpenCV cannot read, before the benchmark's minutes are spent."""
    import cv2

    if not path.is_file():
        raise EdgeFetalError(f"--scan {path}: no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable:
        raise EdgeFetalError(f"--scan {path}: not a video file OpenCV can decode here")


def _scan_file(path: Path, quick: bool, notes: list[str], given: Path | None = None) -> ScanFile | None:
    """The recorded scan the offline line streams from a file: `given`, else a simulated sweep
    written to `path`; None (and a note) where OpenCV cannot write mp4 here, so that every other
    figure is still measured."""
    from edge_fetal.bench.frames import write_scan_video

    if given is not None:
        return ScanFile(given, f"{given}: a recorded scan given with --scan")
    try:
        count = write_scan_video(path, QUICK_SCAN if quick else None)
    except OSError as error:
        notes.append(f"no offline run from a file: {error}")
        return None
    return ScanFile(path, f"a simulated sweep of {count} frames, 800x540, mp4v, no pixel spacing")


def _with_gflop(row: dict, gflop: float | None, peak_gflops: float | None) -> dict:
    achieved = gflop * row["frames_per_s"] if gflop and row.get("frames_per_s") else None
    # four significant digits, not decimals: a tiny model on a busy machine gets fractions like 0.0005
    return {**row, "gflop_per_frame": gflop, "gflops_achieved": float(f"{achieved:.4g}") if achieved else None,
            "peak_fraction": float(f"{achieved / peak_gflops:.4g}") if achieved and peak_gflops else None}


def run_benchmark(options: BenchOptions = BenchOptions(), log: Callable[[str], None] = _stderr) -> dict:
    """Run the benchmark, write its files, return the JSON document (with `files`)."""
    opts = options.resolved()
    try:
        import torch
    except ImportError:
        return _run(opts, log)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(opts.threads)
    try:
        return _run(opts, log)
    finally:
        torch.set_num_threads(threads_before)  # the caller's setting (tests share the process)


def _run(opts: BenchOptions, log: Callable[[str], None]) -> dict:
    from edge_fetal.bench.build import model_variants, scaling_variants
    from edge_fetal.bench.end_to_end import compare_end_to_end
    from edge_fetal.bench.frames import bench_frames, describe
    from edge_fetal.bench.models import load_model_under_test
    from edge_fetal.bench.peak import matmul_peak

    notes: list[str] = []
    if opts.scan is not None:
        check_scan(opts.scan)
    machine = schema.machine_info()
    frames = bench_frames(opts.real_frames, opts.sim_per_plane)
    model = load_model_under_test(opts.model, opts.checkpoint, probe=_probe(frames, opts.model))
    log(f"bench: {machine['cpu']}, {opts.threads} thread(s); model {opts.model} (input {'x'.join(map(str, model.box(model.input_size)))} px); "
        f"torch weights: {model.torch_weights}")
    if model.torch_weights.startswith("random"):
        notes.append("the torch rows and the naive baseline run random weights (latency does not depend on them, but the "
                     "naive loop then measures other masks than the pipeline): pass --checkpoint for a like-for-like "
                     "end-to-end comparison")
    peaks = [matmul_peak(opts.threads, opts.peak_n)]
    stem = schema.results_stem("bench", machine)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    variants: list[Variant] = []
    scaling: dict[str, dict[int, Variant]] = {}
    with tempfile.TemporaryDirectory(prefix="edge-fetal-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        try:
            variants = model_variants(model, frames, scratch, opts.threads, notes, log)
            scaling = scaling_variants(model, frames, variants[0], scratch, opts.threads, list(opts.sizes),
                                       list(opts.batches), list(opts.streams), notes)
            timed = list(dict.fromkeys(variants + [v for axis in scaling.values() for v in axis.values()]))
            for variant in timed:
                variant.warm_up(opts.warmup)
            scan_file = _scan_file(scratch / "scan.mp4", opts.quick, notes, opts.scan)
            bar = _Bar(opts.rounds * len(timed) + (4 if scan_file else 3) * opts.e2e_rounds, opts.show_progress)
            log(f"bench: {len(timed)} variants x {opts.rounds} rounds x {opts.iterations} calls, interleaved")
            interleave(timed, opts.rounds, opts.iterations, bar.step)
            peaks.append(matmul_peak(opts.threads, opts.peak_n))
            peak = max(peaks, key=lambda p: p["gflops"])
            rows = {v.name: _with_gflop({**v.row(), "input_hw": list(model.box(v.label["input_size"]))},
                                        model.gflop(v.label["input_size"]), peak["gflops"]) for v in timed}
            rss_after_model = peak_rss_mib()
            best = min(variants, key=lambda v: rows[v.name]["p50_ms"])
            log(f"bench: end to end with {best.name} (fastest p50) vs the naive baseline")
            profile_path = opts.out_dir / f"{stem}_profile.txt" if opts.profile else None
            with _offline_engine(best, opts.threads) as offline:
                end_to_end = compare_end_to_end(frames, best.backend, best.name, model.network, model.input_size,
                                                scratch / "e2e", opts.e2e_rounds, opts.hold, bar.step, profile_path,
                                                offline, scan_file)
            bar.close()
            engine = None
            on_cpu = [v for v in variants if v.model_path is not None]
            if opts.engine_rss and on_cpu:
                from edge_fetal.bench.engine_rss import measure_engine_rss

                fastest = min(on_cpu, key=lambda v: rows[v.name]["p50_ms"])
                log(f"bench: peak RSS of an engine process running {fastest.name}")
                engine = {"variant": fastest.name, **measure_engine_rss(fastest.model_path, opts.threads, opts.real_frames,
                                                                         opts.sim_per_plane, opts.hold)}
        finally:
            for variant in dict.fromkeys(variants + [v for axis in scaling.values() for v in axis.values()]):
                variant.close()
    doc = schema.result_document(
        "edge-fetal bench", machine, model.describe(), model.box(model.input_size), list(rows.values()), notes,
        settings={**{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                     if k not in ("plot", "latest", "show_progress", "engine_rss")}, "frames": describe(frames)},
        peak={**peak, "all": peaks},
        scaling={axis: [{axis: key, **rows[v.name]} for key, v in points.items()] for axis, points in scaling.items()},
        end_to_end=end_to_end,
        memory={"engine_process": engine, "peak_rss_mib": peak_rss_mib(), "peak_rss_mib_after_model_only": rss_after_model,
                "note": "engine_process: a fresh process streaming the frames with one ONNX Runtime session; "
                        "peak_rss_mib: of the benchmark process, every variant (and torch) open at once; both are VmHWM "
                        "(ru_maxrss where there is no /proc)"},
    )
    doc["files"] = write_results(doc, opts.out_dir, stem, opts.plot, opts.latest, profile_path,
                                 [(v.name, v.times_ms) for v in variants])
    return doc


def write_results(doc: dict, out_dir: Path, stem: str, plot: bool, latest: bool, profile_path: Path | None,
                  distribution: list) -> dict:
    """`<stem>.json/.md/.png` in `out_dir`, and `latest.*` copies; returns {kind: path}."""
    import numpy as np

    from edge_fetal.bench.markdown import format_markdown

    files = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    if plot:
        from edge_fetal.bench.plot import draw_figure

        files["png"] = draw_figure(out_dir / f"{stem}.png", f"edge-fetal bench: {doc['machine']['cpu']}, {doc['date']}",
                                   [(name, np.asarray(times)) for name, times in distribution], doc["scaling"])
    if profile_path is not None:
        files["profile"] = profile_path
    doc["files"] = {k: str(v) for k, v in files.items()}
    files["markdown"].write_text(format_markdown(doc))
    files["json"].write_text(json.dumps(doc, indent=2) + "\n")
    if latest:
        for kind, path in list(files.items()):
            copy = out_dir / ("latest_profile.txt" if kind == "profile" else f"latest{path.suffix}")
            shutil.copyfile(path, copy)
    return doc["files"]
