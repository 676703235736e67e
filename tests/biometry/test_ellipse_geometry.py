"""Rasterised shapes of known size come back at their size: the geometry the clinic relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_fetal.biometry import Ellipse, measure_abdomen, measure_femur, measure_head, ramanujan_perimeter, rasterise_ellipse


def bar_mask(shape_hw, centre_xy, length_px, width_px, angle_deg):
    """Pixels whose centres lie inside a rectangle of the given length, width and angle."""
    ys, xs = np.mgrid[0 : shape_hw[0], 0 : shape_hw[1]]
    theta = math.radians(angle_deg)
    dx, dy = xs - centre_xy[0], ys - centre_xy[1]
    along = dx * math.cos(theta) + dy * math.sin(theta)
    across = -dx * math.sin(theta) + dy * math.cos(theta)
    return (np.abs(along) <= length_px / 2) & (np.abs(across) <= width_px / 2)


def test_ramanujan_perimeter_of_a_circle_and_a_known_ellipse():
    assert ramanujan_perimeter(10, 10) == pytest.approx(2 * math.pi * 10, rel=1e-12)
    # a=2, b=1: the exact perimeter is 9.688448220547675... (complete elliptic integral).
    assert ramanujan_perimeter(2, 1) == pytest.approx(9.688448220547675, rel=1e-9)


@pytest.mark.parametrize("diameter_px", [40, 60, 100, 250, 500])
@pytest.mark.parametrize("ratio", [0.6, 0.8, 1.0])
@pytest.mark.parametrize("angle_deg", [0, 23, 45, 90, 137])
def test_perimeter_within_half_a_percent_down_to_40_px(diameter_px, ratio, angle_deg):
    semi_major = diameter_px / 2
    truth = Ellipse(diameter_px * 0.9 + 10.37, diameter_px * 0.8 + 10.61, semi_major, semi_major * ratio, angle_deg)
    mask = rasterise_ellipse((int(diameter_px * 1.7 + 25), int(diameter_px * 1.9 + 25)), truth)
    measured = measure_head(mask, 0.1)
    assert measured.shown, measured.withheld_reason
    assert measured.hc_mm == pytest.approx(truth.perimeter_px * 0.1, rel=0.005)
    assert measured.ofd_mm == pytest.approx(2 * semi_major * 0.1, rel=0.01)
    assert measured.bpd_mm == pytest.approx(2 * semi_major * ratio * 0.1, rel=0.01)


def test_major_axis_angle_is_recovered():
    truth = Ellipse(150.2, 120.7, 90, 60, 33)
    measured = measure_abdomen(rasterise_ellipse((260, 320), truth), 0.2)
    assert measured.geometry.angle_deg == pytest.approx(33, abs=0.5)
    assert measured.ac_mm == pytest.approx(truth.perimeter_px * 0.2, rel=0.002)


@pytest.mark.parametrize("length_px", [30, 80, 200])
@pytest.mark.parametrize("angle_deg", [0, 12, 45, 71, 90, 160])
def test_femur_bar_length_within_one_pixel(length_px, angle_deg):
    mask = bar_mask((300, 300), (150.3, 149.6), length_px, 6, angle_deg)
    measured = measure_femur(mask, 0.1)
    assert measured.shown, measured.withheld_reason
    assert measured.values_px["fl"] == pytest.approx(length_px, abs=1.0)
    assert measured.geometry.angle_deg == pytest.approx(angle_deg % 180, abs=1.0) or abs(
        measured.geometry.angle_deg - angle_deg % 180) > 179


def test_slightly_curved_femur_measures_its_chord():
    """A bone bent along a circular arc: FL is the end-to-end chord, not the arc length."""
    ys, xs = np.mgrid[0:300, 0:400]
    radius, half_angle = 400.0, math.radians(12)
    centre = np.array([200.0, 150.0 + radius])  # arc bulging upwards through (200, 150)
    distance = np.hypot(xs - centre[0], ys - centre[1])
    angle = np.arctan2(xs - centre[0], centre[1] - ys)
    mask = (np.abs(distance - radius) <= 3) & (np.abs(angle) <= half_angle)
    chord = 2 * radius * math.sin(half_angle)
    measured = measure_femur(mask, 0.1)
    assert measured.shown, measured.withheld_reason
    assert measured.values_px["fl"] == pytest.approx(chord, abs=1.5)


@settings(max_examples=25, deadline=None)
@given(
    angle=st.floats(0, 180),
    shift_x=st.floats(-40, 40),
    shift_y=st.floats(-30, 30),
)
def test_head_measurement_is_rotation_and_translation_invariant(angle, shift_x, shift_y):
    reference = measure_head(rasterise_ellipse((300, 360), Ellipse(180, 150, 70, 52, 0)), 0.1)
    moved = measure_head(rasterise_ellipse((300, 360), Ellipse(180 + shift_x, 150 + shift_y, 70, 52, angle)), 0.1)
    assert moved.hc_mm == pytest.approx(reference.hc_mm, rel=0.004)
    assert moved.bpd_mm == pytest.approx(reference.bpd_mm, rel=0.01)


@settings(max_examples=20, deadline=None)
@given(spacing=st.floats(0.01, 1.0), angle=st.floats(0, 180))
def test_lengths_scale_with_spacing(spacing, angle):
    mask = rasterise_ellipse((240, 240), Ellipse(120, 118, 80, 60, angle))
    base = measure_head(mask, 1.0)
    scaled = measure_head(mask, spacing)
    assert scaled.hc_mm == pytest.approx(base.hc_mm * spacing, rel=1e-9)
    femur = measure_femur(bar_mask((200, 200), (100, 100), 120, 6, angle), spacing)
    assert femur.fl_mm == pytest.approx(femur.values_px["fl"] * spacing, rel=1e-9)
