"""Every bad input gives a clear error or a withheld measurement with its reason, never a trace."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_fetal.biometry import Ellipse, NO_SPACING_REASON, measure_abdomen, measure_femur, measure_head, rasterise_ellipse
from edge_fetal.errors import CalibrationError, EdgeFetalError, MaskError

HEAD = rasterise_ellipse((200, 240), Ellipse(120, 100, 60, 45, 20))


@pytest.mark.parametrize("measure", [measure_head, measure_abdomen, measure_femur])
def test_empty_mask_is_withheld(measure):
    result = measure(np.zeros((100, 100), bool), 0.1)
    assert not result.shown
    assert "no " in result.withheld_reason
    assert result.values_mm == {}


def test_two_blobs_are_withheld_as_ambiguous():
    two = rasterise_ellipse((200, 400), Ellipse(100, 100, 50, 40, 0)) | rasterise_ellipse((200, 400), Ellipse(300, 100, 48, 40, 0))
    result = measure_head(two, 0.1)
    assert not result.shown and "two separate" in result.withheld_reason
    assert result.hc_mm is None


def test_a_speck_beside_the_head_is_ignored():
    specked = HEAD.copy()
    specked[5:8, 5:8] = True
    assert measure_head(specked, 0.1).hc_mm == pytest.approx(measure_head(HEAD, 0.1).hc_mm, rel=1e-9)


def test_mask_touching_the_border_is_withheld():
    cut = rasterise_ellipse((200, 240), Ellipse(30, 100, 60, 45, 0))
    result = measure_head(cut, 0.1)
    assert not result.shown and "border" in result.withheld_reason


def test_tiny_region_is_withheld():
    result = measure_head(rasterise_ellipse((100, 100), Ellipse(50, 50, 6, 5, 0)), 0.1)
    assert not result.shown and "too small" in result.withheld_reason


def test_non_elliptical_outline_is_withheld():
    star = HEAD.copy()
    star[60:140, 120:200] = False  # a quarter bitten out: no longer an ellipse
    result = measure_head(star, 0.1)
    assert not result.shown and "not elliptical" in result.withheld_reason


def test_femur_axis_of_an_empty_mask_names_the_problem():
    from edge_fetal.biometry.femur import femur_axis

    with pytest.raises(MaskError, match="empty"):
        femur_axis(np.zeros((20, 30), bool), np.zeros((0, 2), np.float32))


def test_round_blob_is_not_a_femur():
    result = measure_femur(HEAD, 0.1)
    assert not result.shown and "bar-like" in result.withheld_reason


@pytest.mark.parametrize("spacing", [0.0, -0.1, math.nan, math.inf, "abc"])
def test_invalid_spacing_is_a_calibration_error(spacing):
    with pytest.raises(CalibrationError, match="pixel spacing"):
        measure_head(HEAD, spacing)


def test_unknown_spacing_gives_pixels_only():
    result = measure_head(HEAD, None)
    assert result.withheld_reason == NO_SPACING_REASON
    assert result.hc_mm is None
    assert result.values_px["hc"] > 0


@pytest.mark.parametrize(
    "mask, message",
    [
        (HEAD.astype(np.float32), "dtype float32"),
        (HEAD[None], "2-D"),
        (HEAD.astype(np.uint8) * 2 + 1, "one foreground value"),
        (np.zeros((2, 2), bool), "at least 3x3"),
    ],
)
def test_wrong_mask_type_is_a_clear_error(mask, message):
    with pytest.raises(MaskError, match=message):
        measure_head(mask, 0.1)
    assert issubclass(MaskError, EdgeFetalError)


def test_uint8_255_mask_is_accepted():
    assert measure_head(HEAD.astype(np.uint8) * 255, 0.1).hc_mm == pytest.approx(measure_head(HEAD, 0.1).hc_mm)
