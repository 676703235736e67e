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
    evaluate.set_defaults(handler=_run_eval)

    demo = commands.add_parser("demo", help="the main job on bundled example frames")
    demo.add_argument("--out", default="demo_out", help="output folder")
    demo.set_defaults(handler=_run_demo)
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge_fetal.demo import run_demo

    run_demo(Path(args.out))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from edge_fetal.data.hc18 import read_hc18
    from edge_fetal.evaluation.annotations import measure_annotations
    from edge_fetal.evaluation.metrics import summarise_errors
    from edge_fetal.evaluation.report import format_rows, format_summary, write_json_atomic

    if not args.from_annotations:
        raise EdgeFetalError("evaluating the model is not available yet: pass --from-annotations")
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


if __name__ == "__main__":
    sys.exit(main())
