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
    os.replace(temporary, path)
