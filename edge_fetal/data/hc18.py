"""The HC18 challenge format: `NNN[_K]HC.png` frames, `*_Annotation.png` rings, a spacing/HC CSV.

HC18 (van den Heuvel et al. 2018, PLoS ONE 13(8): e0200412; CC BY 4.0): the expert outline is a
1-pixel ellipse ring, and the CSV's HC is the Ramanujan perimeter of the ellipse fitted to the
ring's pixel centres. The head mask follows the project convention (pixels whose centres lie
inside that ellipse), so the outline sits on the ring's centre line, where the experts drew it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_fetal.biometry import Ellipse, rasterise_ellipse
from edge_fetal.biometry.ellipse import fit_ellipse_to_points
from edge_fetal.biometry.measure import check_spacing
from edge_fetal.errors import CalibrationError, DatasetError

SPACING_COLUMN = "pixel size(mm)"
HC_COLUMN = "head circumference (mm)"
_SUBJECT = re.compile(r"^(\d+)_")


@dataclass(frozen=True)
class HC18Item:
    """One HC18 frame: where it is, its spacing, its HC truth (None in the test set)."""

    name: str
    subject: str
    image_path: Path
    mm_per_px: float
    hc_mm: float | None

    @property
    def annotation_path(self) -> Path:
        return self.image_path.with_name(self.image_path.stem + "_Annotation.png")


def read_hc18(csv_path: str | Path, images_dir: str | Path) -> list[HC18Item]:
    """Every row of an HC18 CSV whose image exists; a missing image or a bad row is an error."""
    csv_path, images_dir = Path(csv_path), Path(images_dir)
    if not csv_path.is_file():
        raise DatasetError(f"HC18 CSV not found: {csv_path}")
    if not images_dir.is_dir():
        raise DatasetError(f"HC18 image folder not found: {images_dir}")
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or []]
        if "filename" not in columns or SPACING_COLUMN not in columns:
            raise DatasetError(
                f"{csv_path}: expected columns 'filename' and '{SPACING_COLUMN}', found {columns}"
            )
        return [_item(csv_path, line, row, images_dir) for line, row in enumerate(reader, start=2)]


def _item(csv_path: Path, line: int, row: dict, images_dir: Path) -> HC18Item:
    row = {key.strip(): (value or "").strip() for key, value in row.items() if key}
    name = row["filename"]
    where = f"{csv_path}:{line} ({name})"
    match = _SUBJECT.match(name)
    if not match:
        raise DatasetError(f"{where}: file name does not start with the subject number NNN_")
    image_path = images_dir / name
    if not image_path.is_file():
        raise DatasetError(f"{where}: image not found in {images_dir}")
    try:
        spacing = check_spacing(row[SPACING_COLUMN] or None)
        hc_mm = float(row[HC_COLUMN]) if row.get(HC_COLUMN) else None
    except (CalibrationError, ValueError) as error:
        raise DatasetError(f"{where}: {error}") from None
    if spacing is None:
        raise DatasetError(f"{where}: pixel size is empty")
    return HC18Item(name, match.group(1), image_path, spacing, hc_mm)


def load_image(path: str | Path) -> np.ndarray:
    """An 8-bit grey frame; unreadable files are a dataset error naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"cannot read image {path}")
    return image


def read_annotation(item: HC18Item) -> tuple[Ellipse, tuple[int, int]]:
    """The ellipse through the centres of the annotation ring's pixels (the HC18 truth) and the frame shape."""
    ring = load_image(item.annotation_path) > 127
    ys, xs = np.nonzero(ring)
    if len(xs) < 5:
        raise DatasetError(f"{item.annotation_path}: the annotation ring is empty")
    return fit_ellipse_to_points(np.stack([xs, ys], axis=1)), ring.shape


def head_mask(item: HC18Item) -> np.ndarray:
    """Filled head mask in source pixels: pixel centres inside the annotated outline."""
    ellipse, shape_hw = read_annotation(item)
    return rasterise_ellipse(shape_hw, ellipse)


def subject_split(items: list[HC18Item], validation_fraction: float, seed: int) -> tuple[list[HC18Item], list[HC18Item]]:
    """Train/validation split by pregnancy: frames sharing `NNN` always land on the same side."""
    subjects = sorted({item.subject for item in items})
    order = np.random.default_rng(seed).permutation(len(subjects))
    count = int(round(validation_fraction * len(subjects)))
    validation_subjects = {subjects[index] for index in order[:count]}
    train = [item for item in items if item.subject not in validation_subjects]
    validation = [item for item in items if item.subject in validation_subjects]
    return train, validation
