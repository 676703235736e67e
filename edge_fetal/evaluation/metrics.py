"""Error summaries, Dice and plane confusion: the figures every evaluation reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorSummary:
    """Signed errors (measured − truth) of one biometric, in mm."""

    count: int
    mae_mm: float | None
    mean_signed_mm: float | None
    sd_mm: float | None
    median_abs_mm: float | None
    max_abs_mm: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def summarise_errors(errors_mm: list[float] | np.ndarray) -> ErrorSummary:
    """MAE, mean signed error, SD (sample), median and max absolute error; None when empty."""
    errors = np.asarray(errors_mm, dtype=np.float64)
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return ErrorSummary(0, None, None, None, None, None)
    absolute = np.abs(errors)
    sd = float(errors.std(ddof=1)) if errors.size > 1 else 0.0
    return ErrorSummary(
        int(errors.size), float(absolute.mean()), float(errors.mean()), sd,
        float(np.median(absolute)), float(absolute.max()),
    )


def dice(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    """Dice overlap of two boolean masks; None when both are empty (nothing to compare)."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    total = int(predicted.sum()) + int(truth.sum())
    if total == 0:
        return None
    return 2.0 * int(np.logical_and(predicted, truth).sum()) / total


def confusion_matrix(truth: list[int], predicted: list[int], classes: int) -> np.ndarray:
    """`[truth, predicted]` counts."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for t, p in zip(truth, predicted):
        matrix[t, p] += 1
    return matrix
