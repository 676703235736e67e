"""Labelled frames for evaluation, from either ground-truth format, as one plain record type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_fetal.data.biometry_csv import mask_name, read_biometry_csv
from edge_fetal.data.hc18 import head_mask, read_hc18
from edge_fetal.errors import DatasetError

MEASURES = ("hc", "bpd", "ofd", "ac", "fl")


@dataclass(frozen=True)
class EvalSample:
    """One frame with its truth: plane, spacing, values in mm, and (maybe) a label mask."""

    name: str
    image_path: Path
    plane: str
    mm_per_px: float
    truth_mm: dict[str, float]
    load_mask: Callable[[], np.ndarray] | None  # uint8 labels in source pixels


def hc18_samples(csv_path: str | Path, images_dir: str | Path, subjects: set[str] | None = None) -> list[EvalSample]:
    """HC18 frames: all heads, HC truth from the CSV, masks from the annotation rings.

    subjects: keep only these pregnancies (`NNN`), e.g. a model's held-out validation split.
    """
    samples = []
    for item in read_hc18(csv_path, images_dir):
        if subjects is not None and item.subject not in subjects:
            continue
        truth = {"hc": item.hc_mm} if item.hc_mm is not None else {}
        loader = (lambda item=item: head_mask(item).astype(np.uint8)) if item.annotation_path.is_file() else None
        samples.append(EvalSample(item.name, item.image_path, "head", item.mm_per_px, truth, loader))
    return samples


def biometry_samples(csv_path: str | Path, images_dir: str | Path) -> list[EvalSample]:
    """Multi-plane CSV frames; a `<stem>_mask.png` next to a frame is its label mask."""
    images_dir = Path(images_dir)
    samples = []
    for row in read_biometry_csv(csv_path, images_dir):
        truth = {name: getattr(row, f"{name}_mm") for name in MEASURES if getattr(row, f"{name}_mm") is not None}
        mask_path = images_dir / mask_name(row.filename)
        loader = (lambda path=mask_path: _read_labels(path)) if mask_path.is_file() else None
        samples.append(EvalSample(row.filename, images_dir / row.filename, row.plane, row.mm_per_px, truth, loader))
    return samples


def _read_labels(path: Path) -> np.ndarray:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise DatasetError(f"cannot read label mask {path} (expected a single-channel PNG)")
    return labels.astype(np.uint8)
