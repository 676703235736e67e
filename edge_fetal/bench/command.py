"""The `bench` command's arguments and printout, shared by `edge-fetal bench`, `python -m
edge_fetal.bench` and `benchmarks/run_bench.py`. Imports nothing heavy: the parser is built at start-up."""

from __future__ import annotations

import argparse
from pathlib import Path


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped engines/fetal_mtl.onnx)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="training checkpoint for the torch rows and the naive baseline (default: the torch "
                             "weights shipped beside the ONNX file, else the manifest's training run's best.pt when "
                             "its labels match the ONNX file's, else the manifest's architecture with random "
                             "weights; latency does not depend on them)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: benchmarks/results)")
    parser.add_argument("--quick", action="store_true", help="a smoke run in seconds: few frames and iterations")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per engine (default: physical cores)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 10, quick 2)")
    parser.add_argument("--iterations", type=int, default=None, help="calls per variant per round (default 20, quick 2)")
    parser.add_argument("--sizes", type=_sizes, default=(192, 256, 320, 384), help="input sides for scaling")
    parser.add_argument("--batches", type=_sizes, default=(1, 2, 4), help="batch sizes for scaling")
    parser.add_argument("--streams", type=_sizes, default=(1, 2, 4), help="concurrent streams for scaling")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one end-to-end pipeline run (top 25 by cumulative time, in the results folder)")
    parser.add_argument("--scan", type=Path, default=None,
                        help="a recorded scan (video file) for the offline run from a file, decoding included "
                             "(default: a simulated sweep of 140 frames the bench writes)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG figure")


def options_from_args(args: argparse.Namespace):
    from edge_fetal.bench.harness import BenchOptions

    return BenchOptions(model=args.model, checkpoint=args.checkpoint, out_dir=args.out, quick=args.quick,
                        threads=args.threads, rounds=args.rounds, iterations=args.iterations, sizes=args.sizes,
                        batches=args.batches, streams=args.streams, profile=args.profile, scan=args.scan,
                        plot=not args.no_plot)


def summary_lines(doc: dict) -> list[str]:
    """A few printable lines: each model-only row, the end-to-end ratio, where the files are."""
    lines = [f"{'variant':<18} {'p50 ms':>8} {'p99 ms':>8} {'frames/s':>9} {'of peak':>8}"]
    for row in (r for r in doc["rows"] if r["group"] == "model"):
        fraction = f"{100 * row['peak_fraction']:.1f} %" if row.get("peak_fraction") is not None else "–"
        lines.append(f"{row['variant']:<18} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['frames_per_s']:>9.1f} {fraction:>8}")
    e2e = doc.get("end_to_end") or {}
    if e2e.get("ratio"):
        pipe, naive = e2e["pipeline"], e2e["naive"]
        lines.append(f"end to end ({e2e['backend']}): pipeline {pipe['frames_per_s']} frames/s vs naive "
                     f"{naive['frames_per_s']} ({e2e['ratio']['throughput']}x); p99 capture→result "
                     f"{pipe['capture_to_result']['p99_ms']:.1f} vs {naive['capture_to_result']['p99_ms']:.1f} ms, "
                     f"p99 processing {pipe['processing']['p99_ms']:.1f} vs {naive['processing']['p99_ms']:.1f} ms")
    from_file = e2e.get("offline_file") or {}
    if from_file.get("frames_per_s") is not None:
        lines.append(f"offline from a file ({from_file['source']}; {from_file['frames_per_run']} frames, decoding "
                     f"included): {from_file['frames_per_s']} frames/s")
    live = e2e.get("live") or {}
    if live.get("capture_to_result", {}).get("p50_ms") is not None:
        c2r = live["capture_to_result"]
        lines.append(f"live source at {live['source_fps']:.0f} frames/s: capture→result p50 {c2r['p50_ms']:.1f} ms, "
                     f"p99 {c2r['p99_ms']:.1f} ms; {live['frames_dropped']} dropped")
    shares = (e2e.get("pipeline") or {}).get("work_shares") or {}
    if shares.get("critical_path") is not None:
        lines.append(f"work outside the model: {100 * shares['critical_path']:.0f} % of the engine's stages, "
                     f"{100 * (shares.get('with_drawing') or 0):.0f} % with drawing, {100 * shares['all_work']:.0f} % with drawing + mp4")
    engine = doc["memory"].get("engine_process") or {}
    lines.append(f"peak {doc['peak']['gflops']} GFLOP/s; peak RSS: engine process "
                 + (f"{engine['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in engine else "not measured")
                 + f", benchmark process {doc['memory']['peak_rss_mib']:.0f} MiB")
    lines += [f"note: {note}" for note in doc["notes"]]
    lines.append("wrote " + ", ".join(doc["files"].values()))
    return lines


def run(args: argparse.Namespace) -> int:
    """The command's handler: run, print the summary."""
    from edge_fetal.bench.harness import run_benchmark

    doc = run_benchmark(options_from_args(args))
    print("\n".join(summary_lines(doc)))
    return 0


def main(argv: list[str] | None = None) -> int:
    import sys

    from edge_fetal.errors import EdgeFetalError

    parser = argparse.ArgumentParser(prog="edge-fetal bench", description="Latency and throughput benchmark of the engine.")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except EdgeFetalError as error:
        print(f"edge-fetal bench: error: {error}", file=sys.stderr)
        return 2
