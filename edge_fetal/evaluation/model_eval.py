"""Evaluate the model on labelled frames: plane accuracy, Dice, and biometry errors in mm.

Biometry is measured exactly as the stream measures it (`runtime.analyse`), in source pixels.
A value counts as *shown* when the predicted plane is right and the shape passes its quality
checks; the error summary over every frame (withheld ones included) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edge_fetal.biometry import Ellipse, rasterise_ellipse
from edge_fetal.data.hc18 import load_image
from edge_fetal.evaluation.metrics import ErrorSummary, confusion_matrix, dice, summarise_errors
from edge_fetal.evaluation.samples import MEASURES, EvalSample
from edge_fetal.runtime.analyse import analyse_frame, measure_labels, structure_mask_in_source
from edge_fetal.runtime.backend import PLANES, STRUCTURE_LABEL, Backend


@dataclass(frozen=True)
class ModelEvaluation:
    """Everything `eval` prints and writes."""

    rows: list[dict]
    plane_accuracy: float
    confusion: np.ndarray  # [truth, predicted] over PLANES
    dice_by_class: dict[str, float | None]  # the model's mask, mapped to source pixels
    outline_dice_by_class: dict[str, float | None]  # the fitted ellipse, the outline drawn and measured
    errors_shown: dict[str, ErrorSummary]
    errors_every_frame: dict[str, ErrorSummary]
    head_dice_by_size: list[dict] = field(default_factory=list)  # see head_dice_by_size()


def evaluate_rows(samples: Iterable[EvalSample], backend: Backend) -> Iterator[dict]:
    """One row per frame: truth and predicted plane, Dice, and each biometric true/measured/error."""
    for sample in samples:
        analysis = analyse_frame(load_image(sample.image_path), backend, sample.mm_per_px)
        row = {"image": sample.name, "plane_true": sample.plane, "plane_pred": analysis.plane,
               "plane_prob": analysis.plane_probabilities[analysis.plane], "dice": None, "dice_outline": None}
        # The truth plane's structure is measured even when the plane was missed, for the
        # every-frame error; it is only *shown* when the plane was right and quality passed.
        label = STRUCTURE_LABEL.get(sample.plane)
        measurement = analysis.measurement
        if label and analysis.plane != sample.plane:
            measurement = measure_labels(analysis.labels_model, sample.plane, analysis.mapping, sample.mm_per_px)
        if sample.load_mask is not None and label:
            truth_mask = sample.load_mask() == label
            predicted = structure_mask_in_source(analysis.labels_model, label, analysis.mapping)
            row["dice"] = dice(predicted, truth_mask)
            if measurement is not None and isinstance(measurement.geometry, Ellipse):
                row["dice_outline"] = dice(rasterise_ellipse(truth_mask.shape, measurement.geometry), truth_mask)
        shown = measurement is not None and measurement.shown and analysis.plane == sample.plane
        row["shown"] = shown
        row["withheld_reason"] = None if shown or measurement is None else (
            measurement.withheld_reason or f"plane read as {analysis.plane}")
        for name, truth in sample.truth_mm.items():
            value_px = measurement.values_px.get(name) if measurement is not None else None
            measured = value_px * sample.mm_per_px if value_px is not None else None
            row[f"{name}_true_mm"] = truth
            row[f"{name}_mm"] = measured
            row[f"{name}_error_mm"] = None if measured is None else measured - truth
        yield row


def summarise(rows: list[dict]) -> ModelEvaluation:
    """Aggregate per-frame rows into the evaluation figures."""
    truth = [PLANES.index(row["plane_true"]) for row in rows]
    predicted = [PLANES.index(row["plane_pred"]) for row in rows]
    accuracy = float(np.mean(np.array(truth) == np.array(predicted))) if rows else 0.0
    dice_by_class, outline_dice_by_class = {}, {}
    for plane in STRUCTURE_LABEL:
        values = [row["dice"] for row in rows if row["plane_true"] == plane and row["dice"] is not None]
        dice_by_class[plane] = float(np.mean(values)) if values else None
        # over the same frames as the mask's Dice: a frame with no outline to fit counts as its mask
        outlines = [row["dice_outline"] if row["dice_outline"] is not None else row["dice"]
                    for row in rows if row["plane_true"] == plane and row["dice"] is not None]
        outline_dice_by_class[plane] = float(np.mean(outlines)) if outlines and plane != "femur" else None
    shown, every = {}, {}
    for name in MEASURES:
        key = f"{name}_error_mm"
        errors = [row[key] for row in rows if row.get(key) is not None]
        if not any(key in row for row in rows):
            continue
        every[name] = summarise_errors(errors)
        shown[name] = summarise_errors([row[key] for row in rows if row.get(key) is not None and row["shown"]])
    return ModelEvaluation(rows, accuracy, confusion_matrix(truth, predicted, len(PLANES)), dice_by_class,
                           outline_dice_by_class, shown, every, head_dice_by_size(rows))


# HC 100 mm is reached at about 14.7 weeks (Hadlock 1984, `ga_from_hc_weeks`): the early-pregnancy heads, small in
# the frame and often beside a similar-looking body, are where a head mask fails most.
SMALL_HEAD_HC_MM = 100.0


def head_dice_by_size(rows: list[dict], small_hc_mm: float = SMALL_HEAD_HC_MM) -> list[dict]:
    """The head Dice (the model's mask) of small heads (true HC under `small_hc_mm`) and of the
    rest, each with its frame count and median; bands without frames are left out."""
    bands = []
    for label, keep in ((f"HC < {small_hc_mm:.0f} mm", lambda hc: hc < small_hc_mm),
                        (f"HC >= {small_hc_mm:.0f} mm", lambda hc: hc >= small_hc_mm)):
        values = [row["dice"] for row in rows if row["plane_true"] == "head" and row["dice"] is not None
                  and row.get("hc_true_mm") is not None and keep(row["hc_true_mm"])]
        if values:
            bands.append({"band": label, "frames": len(values), "mean": float(np.mean(values)),
                          "median": float(np.median(values))})
    return bands
