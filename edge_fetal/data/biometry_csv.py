"""The multi-plane ground-truth CSV (`--format biometry`), and simulated data sets written in it.

    filename,plane,pixel_size_mm,hc_mm,bpd_mm,ofd_mm,ac_mm,fl_mm
    0000_head.png,head,0.1342,254.1,71.2,86.0,,
    0001_abdomen.png,abdomen,0.1577,,,,231.9,

`plane` is head, abdomen, femur or other; a measurement cell is empty when it does not apply to
the plane (HC, BPD, OFD: head; AC: abdomen; FL: femur) or was not measured. Every problem in a
file is a `DatasetError` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from edge_fetal.data.sim_anatomy import PLANES
from edge_fetal.errors import DatasetError

COLUMNS = ("filename", "plane", "pixel_size_mm", "hc_mm", "bpd_mm", "ofd_mm", "ac_mm", "fl_mm")
MEASURES_BY_PLANE = {"head": ("hc_mm", "bpd_mm", "ofd_mm"), "abdomen": ("ac_mm",), "femur": ("fl_mm",), "other": ()}
CSV_NAME = "biometry.csv"


@dataclass(frozen=True)
class BiometryRow:
    """One frame's plane, pixel spacing and measurements in mm (None where absent)."""

    filename: str
    plane: str
    mm_per_px: float
    hc_mm: float | None = None
    bpd_mm: float | None = None
    ofd_mm: float | None = None
    ac_mm: float | None = None
    fl_mm: float | None = None


def mask_name(filename: str) -> str:
    """The label mask written next to a simulated frame: `NNNN_plane.png` -> `NNNN_plane_mask.png`."""
    path = Path(filename)
    return f"{path.stem}_mask{path.suffix}"


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{path}, line {line}: {column} is not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0.0:
        raise DatasetError(f"{path}, line {line}: {column} must be a positive length, got {text!r}")
    return value


def _row(path: Path, line: int, cells: dict, images_dir: Path | None) -> BiometryRow:
    filename = cells["filename"].strip()
    if not filename:
        raise DatasetError(f"{path}, line {line}: empty filename")
    plane = cells["plane"].strip().lower()
    if plane not in PLANES:
        expected = ", ".join(PLANES)
        raise DatasetError(f"{path}, line {line}: unknown plane {cells['plane']!r} (expected one of {expected})")
    spacing_text = cells["pixel_size_mm"].strip()
    if not spacing_text:
        raise DatasetError(f"{path}, line {line}: pixel_size_mm is empty")
    values = {}
    for column in COLUMNS[3:]:
        text = cells[column].strip()
        if not text:
            continue
        if column not in MEASURES_BY_PLANE[plane]:
            raise DatasetError(f"{path}, line {line}: {column} does not apply to plane {plane!r} (leave it empty)")
        values[column] = _number(path, line, column, text)
    if images_dir is not None and not (images_dir / filename).is_file():
        raise DatasetError(f"{path}, line {line}: image {filename!r} not found in {images_dir}")
    return BiometryRow(filename, plane, _number(path, line, "pixel_size_mm", spacing_text), **values)


def read_biometry_csv(csv_path: str | Path, images_dir: str | Path | None = None) -> list[BiometryRow]:
    """All rows of a biometry CSV; with `images_dir`, every listed image must exist there."""
    path = Path(csv_path)
    if not path.is_file():
        raise DatasetError(f"biometry CSV not found: {path}")
    folder = None if images_dir is None else Path(images_dir)
    if folder is not None and not folder.is_dir():
        raise DatasetError(f"image folder not found: {folder}")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise DatasetError(
                f"{path}, line 1: missing column(s) {', '.join(missing)} (header must be {','.join(COLUMNS)})"
            )
        rows, seen = [], {}
        for line, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise DatasetError(f"{path}, line {line}: expected {len(header)} cells, got {len(cells)}")
            row = _row(path, line, dict(zip(header, cells)), folder)
            if row.filename in seen:
                raise DatasetError(f"{path}, line {line}: {row.filename!r} already listed on line {seen[row.filename]}")
            seen[row.filename] = line
            rows.append(row)
    return rows


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_biometry_csv(csv_path: str | Path, rows: Iterable[BiometryRow]) -> None:
    """Write `rows` with the standard header (spacing to 1e-9 mm, lengths to 1e-4 mm)."""
    with Path(csv_path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([r.filename, r.plane, f"{r.mm_per_px:.9f}", *(
                _cell(getattr(r, column), 4) for column in COLUMNS[3:])])


def write_simulated_set(
    out_dir: str | Path, n: int, seed: int = 0, *, scanner_overlay: bool = True
) -> list[BiometryRow]:
    """Write `n` simulated frames (planes in turn: head, abdomen, femur, other), their label
    masks and `biometry.csv` into `out_dir`; returns the rows as written (rounded like the
    file). Same seed, same files."""
    from edge_fetal.data.simulator import render_frame  # the CSV reader alone needs no simulator

    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        plane = PLANES[i % len(PLANES)]
        frame_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        frame = render_frame(plane, frame_seed, scanner_overlay=scanner_overlay)
        name = f"{i:04d}_{plane}.png"
        for file, image in ((name, frame.image), (mask_name(name), frame.mask)):
            if not cv2.imwrite(str(out / file), image):
                raise DatasetError(f"cannot write {out / file}")
        t = frame.truth
        rows.append(BiometryRow(name, plane, t.mm_per_px, t.hc_mm, t.bpd_mm, t.ofd_mm, t.ac_mm, t.fl_mm))
    write_biometry_csv(out / CSV_NAME, rows)
    return read_biometry_csv(out / CSV_NAME, images_dir=out)
