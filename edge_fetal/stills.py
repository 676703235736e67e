"""One-shot biometry of still frames (`edge-fetal measure IMAGE...`): PNG/JPEG/BMP or DICOM.

Each frame is classified, segmented and measured exactly as `eval` and `stream` do
(`runtime.analyse.analyse_frame`). Lengths are given in mm only when the frame's pixel spacing is
known: `--pixel-spacing`, a spacing CSV naming the file, or the DICOM file's own calibration;
otherwise in pixels, with the reason. A file that cannot be read gives an error row for that
file and the others are still measured.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_fetal.calibration import PixelSpacing
from edge_fetal.errors import EdgeFetalError
from edge_fetal.runtime.analyse import analyse_frame
from edge_fetal.runtime.backend import Backend
from edge_fetal.stream.fusion import usable_values
from edge_fetal.stream.readers import DicomCineReader, is_dicom
from edge_fetal.stream.sources import to_grey_u8


@dataclass
class StillResult:
    """What one file gave: the plane, its probability, the values (mm or px), and any reason."""

    path: str
    plane: str | None = None
    probability: float | None = None
    unit: str | None = None  # "mm" or "px"
    values: dict[str, float] = field(default_factory=dict)
    calibration: str | None = None
    note: str | None = None  # why a value is withheld or shown in px, or the read error

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def load_still(path: Path) -> tuple[np.ndarray, PixelSpacing | None, str | None]:
    """(grey uint8 frame, its own spacing or None, a note) for an image or DICOM file."""
    if not path.is_file():
        raise EdgeFetalError(f"{path}: no such file")
    if is_dicom(path):
        reader = DicomCineReader(path)
        reader.open()
        try:
            raw = reader.read()
            frames = reader.frame_count
        finally:
            reader.close()
        note = reader.calibration_note
        if frames > 1:
            note = "; ".join(filter(None, [note, f"cine of {frames} frames: the first is measured (use `stream` for all)"]))
        return to_grey_u8(raw.image, reader.colour, reader.bits_stored), reader.spacing, note
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise EdgeFetalError(f"{path}: not a readable image (PNG, JPEG, BMP, TIFF) or DICOM file")
    return to_grey_u8(image), None, None


def measure_still(path: Path, backend: Backend, spacing: PixelSpacing | None) -> StillResult:
    """Measure one file; `spacing` (from the command line or a CSV) overrides the file's own."""
    result = StillResult(str(path))
    try:
        grey, own_spacing, note = load_still(path)
    except (EdgeFetalError, ValueError, OSError) as error:
        result.note = str(error)
        return result
    spacing = spacing or own_spacing
    analysis = analyse_frame(grey, backend, spacing.mm_per_px if spacing else None)
    result.plane, result.probability = analysis.plane, analysis.plane_probabilities[analysis.plane]
    result.calibration = spacing.source if spacing else None
    result.values, result.unit, reason = usable_values(analysis.measurement)  # the stream's rule: mm, px, or why not
    notes = [note] if note else []
    if analysis.measurement is None:
        notes.append("no biometry in this plane")
    elif result.unit == "px":
        notes.append("no pixel spacing: lengths in px (give --pixel-spacing or --spacing-csv)")
    elif reason is not None:
        notes.append(f"withheld: {reason}")
    result.note = "; ".join(notes) or None
    return result


def format_result(result: StillResult) -> str:
    """`name  head 1.00  HC 278.1 mm  BPD 74.2 mm  OFD 97.1 mm  [note]`."""
    parts = [Path(result.path).name]
    if result.plane is not None:
        parts.append(f"{result.plane} {result.probability:.2f}")
    parts += [f"{name.upper()} {value:.1f} {result.unit}" for name, value in result.values.items()]
    if result.note:
        parts.append(f"[{result.note}]")
    return "  ".join(parts)


def run_measure_command(args: argparse.Namespace) -> int:
    """`edge-fetal measure`: one line per file, optionally a JSON list; exit 2 when a file failed."""
    from edge_fetal.calibration import spacing_from_value, spacing_table_from_csv
    from edge_fetal.engines import default_model_path
    from edge_fetal.runtime.select import open_backend

    fixed = spacing_from_value(args.pixel_spacing, "--pixel-spacing") if args.pixel_spacing is not None else None
    table = spacing_table_from_csv(args.spacing_csv) if args.spacing_csv else {}
    results = []
    with open_backend(args.backend, args.model or default_model_path(), engine_path=args.engine) as backend:
        for name in args.images:
            path = Path(name)
            result = measure_still(path, backend, fixed or table.get(path.name))
            print(format_result(result), flush=True)
            results.append(result.as_dict())
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(r["plane"] is not None for r in results) else 2
