"""Printing and saving evaluation results: a summary per biometric and the per-image table."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from edge_fetal.evaluation.metrics import ErrorSummary


def format_summary(name: str, summary: ErrorSummary) -> str:
    """One line: `HC  n=796  MAE 0.011 mm  mean +0.004  SD 0.014  median 0.008  max 0.072`."""
    if summary.count == 0:
        return f"{name:<4} n=0  (nothing measured)"
    return (
        f"{name:<4} n={summary.count:<4d} MAE {summary.mae_mm:.3f} mm  mean {summary.mean_signed_mm:+.3f}"
        f"  SD {summary.sd_mm:.3f}  median {summary.median_abs_mm:.3f}  max {summary.max_abs_mm:.3f}"
    )


def format_rows(rows: list[dict], columns: list[str]) -> str:
    """A plain fixed-width table of the given columns (floats to 2 decimals, None as '-')."""
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    table = [columns] + [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)) for line in table)


def write_json_atomic(path: str | Path, payload: dict) -> None:
    """Write JSON so that a reader never sees a half-written file (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is for everyone who may read the folder
    os.replace(temporary, path)


def format_model_evaluation(evaluation, data_label: str) -> str:
    """The printed summary of a model evaluation: planes, confusion, Dice, biometry errors."""
    from edge_fetal.runtime.backend import PLANES

    lines = [f"Model evaluation on {data_label}: {len(evaluation.rows)} frames"]
    lines.append(f"plane accuracy {evaluation.plane_accuracy * 100:.2f} %")
    lines.append("confusion (rows truth, columns predicted): " + " ".join(f"{p:>7}" for p in PLANES))
    for plane, counts in zip(PLANES, evaluation.confusion):
        if counts.sum():
            lines.append(f"  {plane:>7} " + " ".join(f"{c:>7d}" for c in counts))
    for plane, value in evaluation.dice_by_class.items():
        if value is not None:
            outline = evaluation.outline_dice_by_class.get(plane)
            lines.append(f"Dice {plane}: {value:.4f} (the model's mask)" + (
                f"; {outline:.4f} (the fitted ellipse drawn and measured)" if outline is not None else ""))
    for band in evaluation.head_dice_by_size:
        lines.append(f"  head Dice, {band['band']}: {band['mean']:.4f} over {band['frames']} frames (median {band['median']:.4f})")
    for name, summary in evaluation.errors_shown.items():
        every = evaluation.errors_every_frame[name]
        lines.append(format_summary(name.upper(), summary) + "   (shown)")
        lines.append(format_summary(name.upper(), every) + "   (every frame, withheld included)")
    return "\n".join(lines)


def model_evaluation_json(evaluation, data_label: str, extra: dict) -> dict:
    """The JSON written by `eval --json` for a model evaluation."""
    from edge_fetal.runtime.backend import PLANES

    return {
        "mode": "model", "data": data_label, **extra,
        "frames": len(evaluation.rows),
        "plane_accuracy": evaluation.plane_accuracy,
        "confusion": {"classes": list(PLANES), "rows_truth_columns_predicted": evaluation.confusion.tolist()},
        "dice": evaluation.dice_by_class,
        "dice_fitted_ellipse": evaluation.outline_dice_by_class,
        "head_dice_by_size": evaluation.head_dice_by_size,
        "errors_shown": {name: s.as_dict() for name, s in evaluation.errors_shown.items()},
        "errors_every_frame": {name: s.as_dict() for name, s in evaluation.errors_every_frame.items()},
        "per_image": evaluation.rows,
    }
