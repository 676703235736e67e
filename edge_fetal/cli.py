"""The `edge-fetal` command: parses arguments, calls the library, prints. No logic of its own."""

from __future__ import annotations

import argparse
import sys
import time

from edge_fetal.errors import EdgeFetalError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except EdgeFetalError as error:
        print(f"edge-fetal: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-fetal: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-fetal", description="Real-time fetal biometry from ultrasound.")
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("eval", help="measure a labelled set and report errors in mm")
    evaluate.add_argument("--format", choices=["hc18", "biometry"], default="hc18")
    evaluate.add_argument("--csv", required=True, help="ground-truth CSV")
    evaluate.add_argument("--images", required=True, help="folder holding the frames")
    evaluate.add_argument("--from-annotations", action="store_true",
                          help="measure the expert annotations instead of the model (checks the geometry alone)")
    evaluate.add_argument("--json", help="write the per-image table and summary here")
    evaluate.add_argument("--per-image", action="store_true", help="print every image, not only the worst ten")
    evaluate.add_argument("--model", default=None, help="ONNX model (default: the shipped engines/fetal_mtl.onnx)")
    _add_backend_arguments(evaluate)
    evaluate.add_argument("--split", choices=["all", "validation"], default="all",
                          help="validation: only the HC18 pregnancies the shipped model never trained on (from its manifest)")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate the first N frames only")
    evaluate.add_argument("--record", metavar="NAME",
                          help="also store the summary figures under evaluation.NAME in the model's manifest")
    evaluate.set_defaults(handler=_run_eval)

    simulate = commands.add_parser("sim", help="write a simulated multi-plane set (frames, masks, biometry.csv)")
    simulate.add_argument("--out", required=True, help="output folder")
    simulate.add_argument("--n", type=int, required=True, help="number of frames (planes in turn)")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.set_defaults(handler=_run_sim)

    stream = commands.add_parser("stream", help="live biometry from a camera, capture card, file, stream, DICOM cine or 'sim'")
    stream.add_argument("--source", required=True,
                        help="camera index (0), video file, rtsp://..., GStreamer pipeline ('... ! appsink'), "
                             "DICOM file, image folder, or sim[:SEED]")
    stream.add_argument("--model", default=None, help="ONNX model (default: the shipped engines/fetal_mtl.onnx)")
    _add_backend_arguments(stream)
    stream.add_argument("--pixel-spacing", metavar="MM", default=None,
                        help="mm per source pixel; overrides the source's own calibration (DICOM regions, simulator)")
    stream.add_argument("--out", default=None,
                        help="output folder (annotated.mp4, events.jsonl, report.json, best_*.png); "
                             "default: a new folder for each run, stream_out/<UTC start time>")
    stream.add_argument("--overwrite", action="store_true", help="replace an earlier run's outputs in --out (refused without)")
    stream.add_argument("--display", action="store_true", help="show the annotated stream in a window (q or Esc stops)")
    stream.add_argument("--dicom-sr", action="store_true",
                        help="also write report_sr.dcm, a DICOM SR of the locked biometry in mm, for a PACS")
    stream.add_argument("--max-frames", type=int, metavar="N", default=None, help="stop after N processed frames")
    stream.add_argument("--realtime", action="store_true",
                        help="pace files at their frame rate and drop stale frames, as live sources always do")
    stream.add_argument("--fps", type=float, metavar="F", default=None,
                        help="frame rate of image folders and sim (pacing, output video); overrides the source's own")
    stream.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    stream.add_argument("--roi", metavar="x,y,w,h", default=None,
                        help="measure only this box of each frame, or 'auto' (DICOM region / image fan, found once)")
    stream.add_argument("--inference-workers", type=int, metavar="N", default=None,
                        help="frames in the model at once (default: 1 live or --realtime, one per core offline)")
    stream.add_argument("--video-encoder", choices=("auto", "cpu"), default="auto",  # stream.config.VIDEO_ENCODERS
                        help="annotated.mp4: 'auto' encodes H.264 on a Jetson's hardware encoder where JetPack's "
                             "OpenCV reaches it, else mp4v on the CPU; 'cpu' always mp4v")
    stream.set_defaults(handler=_run_stream)

    still = commands.add_parser("measure", help="one-shot biometry of still frames (PNG/JPEG or DICOM)")
    still.add_argument("images", nargs="+", metavar="IMAGE", help="image or DICOM files")
    still.add_argument("--pixel-spacing", metavar="MM", default=None, help="mm per pixel for every frame (overrides DICOM)")
    still.add_argument("--spacing-csv", default=None, help="CSV with filename and pixel size columns (HC18 or biometry format)")
    still.add_argument("--model", default=None, help="ONNX model (default: the shipped engines/fetal_mtl.onnx)")
    _add_backend_arguments(still)
    still.add_argument("--json", help="also write the results here")
    still.set_defaults(handler=_run_measure)

    training = commands.add_parser("train", help="train the multi-task network (needs the `train` extra)")
    training.add_argument("--config", required=True, help="TOML or JSON training config")
    training.add_argument("--resume", action="store_true", help="continue the run's last checkpoint")
    training.set_defaults(handler=_run_train)

    export = commands.add_parser("export", help="convert a trained checkpoint for deployment")
    targets = export.add_subparsers(dest="target", required=True)
    to_onnx = targets.add_parser("onnx", help="torch checkpoint → ONNX (contract in DESIGN.md) + manifest")
    to_onnx.add_argument("--checkpoint", required=True, help="training checkpoint (runs/NAME/best.pt)")
    to_onnx.add_argument("--out", default="engines/fetal_mtl.onnx")
    to_onnx.add_argument("--parity-frames", type=int, default=24, help="real HC18 frames for the torch vs ONNX check")
    to_onnx.add_argument("--head-logit-offset", type=float, default=0.0,
                         help="added to the head class's logit before export: below 0 draws the head outline in "
                              "(recorded in the manifest; how it is chosen: edge_fetal/train/EXPERIMENTS.md)")
    to_onnx.add_argument("--femur-logit-offset", type=float, default=0.0,
                         help="added to the femur class's logit before export: below 0 shortens the femur "
                              "(recorded in the manifest, chosen like the head's)")
    to_onnx.set_defaults(handler=_run_export_onnx)
    to_int8 = targets.add_parser("int8", help="ONNX → static INT8 (QDQ, per-channel) for CPU edge boxes")
    to_int8.add_argument("--onnx", default="engines/fetal_mtl.onnx", help="exported float model")
    to_int8.add_argument("--out", default="engines/fetal_mtl_int8.onnx")
    to_int8.add_argument("--calibration-frames", type=int, default=48,
                         help="real HC18 frames for calibration (plus 12 simulated frames per plane)")
    to_int8.set_defaults(handler=_run_export_int8)
    to_trt = targets.add_parser("tensorrt", help="ONNX → TensorRT FP16 engine + manifest (run on the Jetson that uses it)")
    to_trt.add_argument("--onnx", default="engines/fetal_mtl.onnx", help="exported model")
    to_trt.add_argument("--out", default=None, help="engine path (default: the ONNX path with .engine)")
    to_trt.add_argument("--fp32", action="store_true", help="FP32 engine (default FP16, plane head kept FP32)")
    to_trt.add_argument("--max-batch", type=int, default=4)
    to_trt.add_argument("--opt-batch", type=int, default=1)
    to_trt.add_argument("--workspace-mb", type=int, default=1024)
    to_trt.add_argument("--timing-cache", default="engines/fetal_mtl.timing_cache", help="reused across rebuilds; '' = none")
    to_trt.set_defaults(handler=_run_export_tensorrt)

    bench = commands.add_parser("bench", help="latency/throughput: every backend, end to end vs a naive baseline, scaling")
    from edge_fetal.bench.command import add_arguments as add_bench_arguments

    add_bench_arguments(bench)
    bench.set_defaults(handler=_run_bench)

    demo = commands.add_parser("demo", help="the main job on bundled example frames")
    demo.add_argument("--out", default="demo_out", help="output folder")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier run's outputs in --out (refused without)")
    demo.add_argument("--model", default=None, help="ONNX model (default: the shipped engines/fetal_mtl.onnx)")
    _add_backend_arguments(demo)
    demo.set_defaults(handler=_run_demo)
    return parser


def _run_sim(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge_fetal.data.biometry_csv import CSV_NAME, write_simulated_set

    if args.n <= 0:
        raise EdgeFetalError(f"--n must be a positive number of frames, got {args.n}")
    started = time.monotonic()
    rows = write_simulated_set(Path(args.out), args.n, seed=args.seed)
    print(f"wrote {len(rows)} simulated frames, masks and {Path(args.out) / CSV_NAME} in {time.monotonic() - started:.1f} s")
    return 0


def _run_stream(args: argparse.Namespace) -> int:
    import threading
    from pathlib import Path

    from edge_fetal.calibration import spacing_from_value
    from edge_fetal.engines import default_model_path
    from edge_fetal.malloc import keep_freed_memory
    from edge_fetal.runtime.onnxruntime_backend import physical_cores
    from edge_fetal.runtime.select import open_backend
    from edge_fetal.stream import SinkConfig, SourceConfig, StreamConfig, open_source, parse_roi, run_stream
    from edge_fetal.stream.config import MAX_INFERENCE_WORKERS, inference_plan
    from edge_fetal.stream.report import summary_lines
    from edge_fetal.stream.sinks import check_output_folder, new_output_folder

    if args.max_frames is not None and args.max_frames < 1:
        raise EdgeFetalError(f"--max-frames must be a positive number of frames, got {args.max_frames}")
    if args.fps is not None and not args.fps > 0:
        raise EdgeFetalError(f"--fps must be > 0, got {args.fps}")
    if args.inference_workers is not None and not 1 <= args.inference_workers <= MAX_INFERENCE_WORKERS:
        raise EdgeFetalError(f"--inference-workers must lie in 1..{MAX_INFERENCE_WORKERS}, got {args.inference_workers}")
    spacing = spacing_from_value(args.pixel_spacing) if args.pixel_spacing is not None else None
    out = Path(args.out) if args.out else new_output_folder(Path("stream_out"))
    check_output_folder(out, args.overwrite)  # before the camera and the model are opened
    source_config = SourceConfig(roi=parse_roi(args.roi) if args.roi else None, fps=args.fps)
    source = open_source(args.source, source_config)
    source.open()  # a wrong --source fails before the model loads
    plan = inference_plan(live=source.live or args.realtime, cores=physical_cores(), workers=args.inference_workers)
    config = StreamConfig(
        source=source_config, pixel_spacing=spacing,
        sinks=SinkConfig(display=args.display, dicom_sr=args.dicom_sr, video_encoder=args.video_encoder),
        realtime=args.realtime, max_frames=args.max_frames, inference_workers=plan.workers,
    )
    keep_freed_memory()  # frame-sized arrays reused from frame to frame, not faulted in again
    stop = threading.Event()
    if args.seconds:
        timer = threading.Timer(args.seconds, stop.set)
        timer.daemon = True
        timer.start()
    try:
        backend = open_backend(args.backend, args.model or default_model_path(), engine_path=args.engine,
                               threads=plan.threads)
    except BaseException:
        source.close()
        raise
    if plan.workers > 1:
        print(f"{plan.workers} frames in the model at once" if backend.parallel_calls
              else f"{backend.name} takes one call at a time: 1 frame in the model at once")
    with backend:
        report = run_stream(source, backend, config, out, progress=_status_printer(), stop=stop,
                            replace_previous=args.overwrite)
    print("\n".join(summary_lines(report)))
    encoder = report["stream"]["video_encoder"]
    print(f"wrote {out / 'annotated.mp4'}{f' ({encoder})' if encoder else ''}, events.jsonl, report.json")
    if report.get("dicom_sr", {}).get("error"):
        return 1
    return 130 if report["stopped_by"] == "interrupted" else 0


def _run_measure(args: argparse.Namespace) -> int:
    from edge_fetal.stills import run_measure_command

    return run_measure_command(args)


def _status_printer():
    """A live one-line status on a terminal; nothing when output is redirected."""
    if not sys.stderr.isatty():
        return None

    def status(line: str) -> None:
        print("\r" + line[:150].ljust(150), end="", file=sys.stderr, flush=True)

    return status


def _run_train(args: argparse.Namespace) -> int:
    from edge_fetal.train.command import run

    return run(args)


def _run_export_onnx(args: argparse.Namespace) -> int:
    from export.command import run_onnx

    return run_onnx(args)


def _run_export_int8(args: argparse.Namespace) -> int:
    from export.command import run_int8

    return run_int8(args)


def _run_export_tensorrt(args: argparse.Namespace) -> int:
    from export.command import run_tensorrt

    return run_tensorrt(args)


def _run_bench(args: argparse.Namespace) -> int:
    from edge_fetal.bench.command import run
    from edge_fetal.malloc import keep_freed_memory

    keep_freed_memory()  # as the engine runs (`stream`), for the pipeline and the naive loop alike
    return run(args)


def _run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge_fetal.demo import ATTRIBUTION, run_demo
    from edge_fetal.engines import default_model_path
    from edge_fetal.malloc import keep_freed_memory
    from edge_fetal.runtime.select import open_backend
    from edge_fetal.stream.report import summary_lines
    from edge_fetal.stream.sinks import check_output_folder

    keep_freed_memory()
    started = time.monotonic()
    out = Path(args.out)
    check_output_folder(out, args.overwrite)
    with open_backend(args.backend, args.model or default_model_path(), engine_path=args.engine) as backend:
        report = run_demo(out, backend, progress=_status_printer(), replace_previous=args.overwrite)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print("\n".join(summary_lines(report)))
    print("known truth of the demo scan: " + ", ".join(f"{k} {v:.1f}" for k, v in report["demo_truth"].items()))
    print(f"{ATTRIBUTION}. Abdomen and femur frames are simulated.")
    print(f"outputs in {out}/: annotated.mp4, events.jsonl, report.json, best-frame PNGs ({time.monotonic() - started:.1f} s)")
    return 130 if report["stopped_by"] == "interrupted" else 0


def _add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["auto", "tensorrt", "onnxruntime", "torch"], default="auto",
                        help="auto: a valid TensorRT engine, else ONNX Runtime GPU, else CPU; torch needs --model CHECKPOINT.pt")
    parser.add_argument("--engine", default=None, help="TensorRT engine (default: --model with .engine)")


def _run_eval(args: argparse.Namespace) -> int:
    from edge_fetal.evaluation.command import run_annotation_eval, run_model_eval

    return run_annotation_eval(args) if args.from_annotations else run_model_eval(args)


if __name__ == "__main__":
    sys.exit(main())
