"""From model labels to a measurement in source pixels (runtime/analyse.py)."""

import cv2
import numpy as np
import pytest

from edge_fetal.biometry import Ellipse, measure_head, rasterise_ellipse
from edge_fetal.calibration import letterbox
from edge_fetal.runtime.analyse import measure_labels, structure_crop_in_source

SOURCE_HW = (540, 800)
MODEL_BOX = (176, 256)
HEAD = 1


def labels_seeing(source_mask: np.ndarray, mapping) -> np.ndarray:
    """The labels a perfect model would give: the source mask shrunk as the frame is, thresholded."""
    content_h, content_w = mapping.content_hw
    shrunk = cv2.resize(source_mask.astype(np.float32), (content_w, content_h), interpolation=cv2.INTER_AREA)
    labels = np.zeros(mapping.model_hw, np.uint8)
    labels[mapping.pad_y:mapping.pad_y + content_h, mapping.pad_x:mapping.pad_x + content_w] = (shrunk >= 0.5) * HEAD
    return labels


@pytest.mark.parametrize("truth", [Ellipse(400.3, 260.7, 180.0, 140.0, 25.0), Ellipse(300.0, 300.0, 60.0, 45.0, 100.0)])
def test_head_outline_at_model_resolution_measures_like_the_source_size_mask(truth):
    mapping = letterbox(SOURCE_HW, MODEL_BOX)
    labels = labels_seeing(rasterise_ellipse(SOURCE_HW, truth), mapping)

    engine = measure_labels(labels, "head", mapping, mm_per_px=0.15)
    crop = structure_crop_in_source(labels, HEAD, mapping)
    from_source_mask = measure_head(crop.mask, 0.15).shifted(crop.x0, crop.y0)

    assert engine.shown and from_source_mask.shown
    assert engine.hc_mm == pytest.approx(from_source_mask.hc_mm, rel=0.005)
    assert engine.hc_mm == pytest.approx(truth.perimeter_px * 0.15, rel=0.005)
    assert engine.geometry.center_x_px == pytest.approx(truth.center_x_px, abs=0.3)
    assert engine.geometry.center_y_px == pytest.approx(truth.center_y_px, abs=0.3)
    # quality figures are in source pixels, whatever resolution the outline was found at
    assert engine.quality.area_px == pytest.approx(from_source_mask.quality.area_px, rel=0.03)


def test_two_heads_of_like_size_in_the_labels_are_withheld_as_ambiguous():
    mapping = letterbox(SOURCE_HW, MODEL_BOX)
    both = rasterise_ellipse(SOURCE_HW, Ellipse(200, 270, 120, 100, 0)) | rasterise_ellipse(
        SOURCE_HW, Ellipse(600, 270, 110, 95, 0))
    measurement = measure_labels(labels_seeing(both, mapping), "head", mapping, mm_per_px=0.15)
    assert not measurement.shown
    assert "two separate head regions" in measurement.withheld_reason


def test_a_head_cut_by_the_frame_edge_is_withheld():
    mapping = letterbox(SOURCE_HW, MODEL_BOX)
    cut = rasterise_ellipse(SOURCE_HW, Ellipse(60, 270, 150, 120, 0))
    measurement = measure_labels(labels_seeing(cut, mapping), "head", mapping, mm_per_px=0.15)
    assert not measurement.shown
    assert "touches the image border" in measurement.withheld_reason
