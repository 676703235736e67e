"""`edge-fetal eval`: run an evaluation from parsed arguments, print it, and write or record it."""

from __future__ import annotations

import argparse
import sys
import time

from edge_fetal.errors import EdgeFetalError


def run_model_eval(args: argparse.Namespace) -> int:
    from edge_fetal.engines import default_model_path, load_manifest, validation_subjects
    from edge_fetal.evaluation.model_eval import evaluate_rows, summarise
    from edge_fetal.evaluation.report import format_model_evaluation, format_rows, model_evaluation_json, write_json_atomic
    from edge_fetal.evaluation.samples import biometry_samples, hc18_samples
    from edge_fetal.progress import progress
    from edge_fetal.runtime.select import open_backend

    if args.split == "validation" and args.format != "hc18":
        raise EdgeFetalError("--split validation names held-out HC18 pregnancies: use it with --format hc18")
    started = time.monotonic()
    model_path = args.model or default_model_path()
    manifest = load_manifest(model_path, required=args.split == "validation")
    subjects = validation_subjects(manifest) if args.split == "validation" else None
    samples = hc18_samples(args.csv, args.images, subjects) if args.format == "hc18" else biometry_samples(args.csv, args.images)
    data_label = "real HC18 frames" if args.format == "hc18" else "frames of a biometry CSV (simulated if made by `edge-fetal sim`)"
    if subjects is not None:
        data_label += ", validation split of the shipped model (pregnancies never used in training)"
    samples = samples[: args.limit] if args.limit else samples
    gflops = manifest.get("model", {}).get("gflops_per_frame")
    gflops_hw = manifest.get("model", {}).get("gflops_input_hw")
    with open_backend(args.backend, model_path, engine_path=args.engine) as backend:
        print(f"model {model_path} ({backend.name}, {_input_words(backend)}"
              + (f", {gflops:.2f} GFLOP per {_frame_words(gflops_hw)}" if gflops else "") + ")")
        rows = list(progress(evaluate_rows(samples, backend), total=len(samples), label="eval"))
    evaluation = summarise(rows)
    seconds = time.monotonic() - started
    error_columns = [c for c in rows[0] if c.endswith("_error_mm")] if rows else []
    worst = sorted(rows, key=lambda r: -max([abs(r[c]) for c in error_columns if r.get(c) is not None] or [0.0]))
    listed = rows if args.per_image else worst[:10]
    print(format_rows(listed, ["image", "plane_true", "plane_pred", "dice", *error_columns, "withheld_reason"]))
    print()
    print(format_model_evaluation(evaluation, data_label))
    print(f"{seconds:.1f} s")
    if args.json:
        extra = {"model": str(model_path), "gflops_per_frame": gflops, "seconds": seconds, "csv": args.csv, "split": args.split}
        write_json_atomic(args.json, model_evaluation_json(evaluation, data_label, extra))
        print(f"wrote {args.json}")
    if args.record:
        from export.manifest import record_evaluation
        from edge_fetal.engines import manifest_path

        figures = model_evaluation_json(evaluation, data_label, {"seconds": seconds})
        del figures["per_image"]
        record_evaluation(manifest_path(model_path), args.record, figures, "edge-fetal " + " ".join(sys.argv[1:]))
        print(f"recorded as evaluation.{args.record} in {manifest_path(model_path)}")
    return 0


def _input_words(backend) -> str:
    if backend.input_stride is None:
        return f"input {backend.input_size}x{backend.input_size} px"
    return (f"input fitted to each frame: long side {backend.input_size} px, "
            f"short side padded to a multiple of {backend.input_stride}")


def _frame_words(input_hw) -> str:
    return f"{input_hw[0]}x{input_hw[1]} frame" if input_hw else "frame"


def run_annotation_eval(args: argparse.Namespace) -> int:
    from edge_fetal.data.hc18 import read_hc18
    from edge_fetal.evaluation.annotations import measure_annotations
    from edge_fetal.evaluation.metrics import summarise_errors
    from edge_fetal.evaluation.report import format_rows, format_summary, write_json_atomic

    if args.format != "hc18":
        raise EdgeFetalError("--from-annotations reads HC18 annotation rings: use --format hc18")
    started = time.monotonic()
    items = read_hc18(args.csv, args.images)
    rows = []
    for result in measure_annotations(items):
        measured = result.hc_measured_mm
        error = None if measured is None or result.hc_true_mm is None else measured - result.hc_true_mm
        rows.append({
            "image": result.name, "hc_true_mm": result.hc_true_mm, "hc_measured_mm": measured,
            "hc_error_mm": error, "shown": result.measurement.shown,
            "withheld_reason": result.measurement.withheld_reason,
        })
    every = summarise_errors([row["hc_error_mm"] for row in rows if row["hc_error_mm"] is not None])
    shown = summarise_errors([row["hc_error_mm"] for row in rows if row["shown"] and row["hc_error_mm"] is not None])
    seconds = time.monotonic() - started

    worst = sorted(rows, key=lambda row: -abs(row["hc_error_mm"] or 0.0))
    listed = rows if args.per_image else worst[:10]
    print(format_rows(listed, ["image", "hc_true_mm", "hc_measured_mm", "hc_error_mm", "withheld_reason"]))
    print(f"\nGeometry check on expert annotations (real HC18 frames), {len(rows)} images, {seconds:.1f} s")
    print(format_summary("HC", every) + "   (every image)")
    print(format_summary("HC", shown) + "   (images that pass the quality checks)")
    for row in rows:
        if not row["shown"]:
            print(f"withheld: {row['image']}: {row['withheld_reason']}")
    if args.json:
        write_json_atomic(args.json, {
            "mode": "annotations", "data": "real HC18 frames (expert annotations, no model)",
            "csv": args.csv, "images": args.images, "seconds": seconds,
            "summary": {"hc_every_image": every.as_dict(), "hc_shown": shown.as_dict()},
            "per_image": rows,
        })
        print(f"wrote {args.json}")
    return 0
