"""Evaluation metrics on hand-made cases whose errors are known in advance."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edge_fetal.biometry import Ellipse, rasterise_ellipse
from edge_fetal.calibration import letterbox
from edge_fetal.evaluation.metrics import confusion_matrix, dice, summarise_errors
from edge_fetal.evaluation.model_eval import evaluate_rows, summarise
from edge_fetal.evaluation.samples import EvalSample
from edge_fetal.runtime.backend import Backend, ModelOutputs

SOURCE_HW = (300, 400)
MM_PER_PX = 0.2


def test_error_summary_of_known_errors():
    summary = summarise_errors([1.0, -1.0, 3.0, float("nan")])
    assert summary.count == 3
    assert summary.mae_mm == pytest.approx(5 / 3)
    assert summary.mean_signed_mm == pytest.approx(1.0)
    assert summary.sd_mm == pytest.approx(2.0)
    assert summary.max_abs_mm == 3.0
    assert summarise_errors([]).mae_mm is None


def test_dice_and_confusion():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[:, :5] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a, a) == 1.0
    assert dice(np.zeros((3, 3)), np.zeros((3, 3))) is None
    assert confusion_matrix([0, 0, 1], [0, 1, 1], 2).tolist() == [[1, 1], [0, 1]]


class ScriptedBackend(Backend):
    """Returns, per call, a head ellipse `grow_px` larger than the truth, and a scripted plane."""

    name = "scripted"

    def __init__(self, truth: Ellipse, grow_px: float, planes: list[int]):
        self.truth, self.grow_px, self.planes = truth, grow_px, list(planes)

    @property
    def input_size(self) -> int:
        return 128

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        mapping = letterbox(SOURCE_HW, 128)
        grown = Ellipse(self.truth.center_x_px, self.truth.center_y_px, self.truth.semi_major_px + self.grow_px,
                        self.truth.semi_minor_px + self.grow_px, self.truth.angle_deg)
        source_mask = rasterise_ellipse(SOURCE_HW, grown).astype(np.float32)
        labels = (mapping.to_model(source_mask) >= 0.5).astype(np.uint8)
        logits = np.full((1, 4), -5.0, np.float32)
        logits[0, self.planes.pop(0)] = 5.0
        return ModelOutputs(labels[None], logits)


def test_eval_reports_the_known_hc_error_and_plane_misses(tmp_path):
    truth = Ellipse(200, 150, 100, 80, 10)
    image_path = tmp_path / "frame.png"
    cv2.imwrite(str(image_path), np.full(SOURCE_HW, 90, np.uint8))
    hc_true = truth.perimeter_px * MM_PER_PX
    samples = [
        EvalSample(f"{i}_HC.png", image_path, "head", MM_PER_PX, {"hc": hc_true},
                   lambda: rasterise_ellipse(SOURCE_HW, truth).astype(np.uint8))
        for i in range(3)
    ]
    backend = ScriptedBackend(truth, grow_px=6.0, planes=[0, 0, 3])  # third frame read as "other"

    evaluation = summarise(list(evaluate_rows(samples, backend)))

    expected_error = 2 * math.pi * 6.0 * MM_PER_PX  # growing both semi-axes by d adds ~2πd to the perimeter
    assert evaluation.plane_accuracy == pytest.approx(2 / 3)
    assert evaluation.confusion[0].tolist() == [2, 0, 0, 1]
    assert evaluation.errors_shown["hc"].count == 2
    assert evaluation.errors_every_frame["hc"].count == 3
    assert evaluation.errors_shown["hc"].mean_signed_mm == pytest.approx(expected_error, rel=0.05)
    assert evaluation.dice_by_class["head"] == pytest.approx(2 * 100 * 80 / (100 * 80 + 106 * 86), abs=0.01)
    assert evaluation.rows[2]["withheld_reason"] == "plane read as other"


class BittenBackend(ScriptedBackend):
    """The truth head with a bite out of one side: a local segmentation miss that the ellipse fit rides over."""

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        mapping = letterbox(SOURCE_HW, 128)
        source_mask = rasterise_ellipse(SOURCE_HW, self.truth).astype(np.float32)
        source_mask[120:180, 270:] = 0.0
        labels = (mapping.to_model(source_mask) >= 0.5).astype(np.uint8)
        logits = np.full((1, 4), -5.0, np.float32)
        logits[0, 0] = 5.0
        return ModelOutputs(labels[None], logits)


def test_eval_reports_the_fitted_outlines_dice_beside_the_masks(tmp_path):
    truth = Ellipse(200, 150, 100, 80, 0)
    image_path = tmp_path / "frame.png"
    cv2.imwrite(str(image_path), np.full(SOURCE_HW, 90, np.uint8))
    sample = EvalSample("0_HC.png", image_path, "head", MM_PER_PX, {"hc": truth.perimeter_px * MM_PER_PX},
                        lambda: rasterise_ellipse(SOURCE_HW, truth).astype(np.uint8))

    evaluation = summarise(list(evaluate_rows([sample], BittenBackend(truth, 0.0, [0]))))

    mask_dice, outline_dice = evaluation.dice_by_class["head"], evaluation.outline_dice_by_class["head"]
    assert mask_dice < 0.96, "the bite should cost the mask's Dice"  # 0.957 measured
    assert outline_dice > 0.985  # 0.990 measured: the robust fit sets the bitten edge aside
    assert evaluation.outline_dice_by_class["femur"] is None


def test_head_dice_is_broken_down_by_head_size():
    def row(hc_true_mm, dice_value, plane="head"):
        return {"image": "x.png", "plane_true": plane, "plane_pred": plane, "dice": dice_value, "dice_outline": None,
                "hc_true_mm": hc_true_mm, "shown": False}

    rows = [row(80.0, 0.5), row(95.0, 0.9), row(100.0, 0.98), row(300.0, 0.96),
            row(None, 0.1), row(250.0, None), row(None, 0.2, plane="abdomen")]
    bands = summarise(rows).head_dice_by_size
    assert [b["band"] for b in bands] == ["HC < 100 mm", "HC >= 100 mm"]
    assert [b["frames"] for b in bands] == [2, 2]  # frames without an HC truth or a Dice are left out
    assert bands[0]["mean"] == pytest.approx(0.7) and bands[1]["mean"] == pytest.approx(0.97)
    assert summarise([row(200.0, 0.97)]).head_dice_by_size == [
        {"band": "HC >= 100 mm", "frames": 1, "mean": 0.97, "median": 0.97}]
