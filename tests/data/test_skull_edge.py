"""The skull-edge profile that carries HC18's outline convention over to the simulator."""

import cv2
import numpy as np

from edge_fetal.biometry import Ellipse
from edge_fetal.data.sim_render import HC18_OUTLINE_OFFSET_MM, truth_for
from edge_fetal.data.sim_scene import sample_scene
from edge_fetal.data.skull_edge import mean_normal_profile, outer_half_grey_mm


def _blurred_ring_image() -> np.ndarray:
    """A bright 12-px bone ring (outer radius 100 px) between darker brain and fluid, blurred."""
    image = np.full((420, 420), 20.0, np.float32)
    cv2.circle(image, (210, 210), 100, 200.0, -1)
    cv2.circle(image, (210, 210), 88, 60.0, -1)
    return cv2.GaussianBlur(image, (0, 0), 3.0)


def test_half_grey_point_is_found_where_the_blurred_edge_crosses_half_way():
    image = _blurred_ring_image()
    mm_per_px = 0.1
    on_edge = outer_half_grey_mm(mean_normal_profile(image, Ellipse(210, 210, 100, 100, 0), mm_per_px))
    inside = outer_half_grey_mm(mean_normal_profile(image, Ellipse(210, 210, 95, 95, 0), mm_per_px))
    assert abs(on_edge) < 0.08  # a symmetric blur crosses half-way at the step itself
    assert abs(inside - 0.5) < 0.08  # an outline 5 px (0.5 mm) inside sees the edge 0.5 mm out


def test_no_echo_means_no_edge():
    flat = np.full((300, 300), 50.0, np.float32)
    assert outer_half_grey_mm(mean_normal_profile(flat, Ellipse(150, 150, 80, 60, 20), 0.1)) is None


def test_simulated_head_truth_lies_the_hc18_offset_outside_the_bone():
    scene = sample_scene("head", np.random.default_rng(5))
    truth = truth_for(scene)
    grow_px = HC18_OUTLINE_OFFSET_MM / scene.mm_per_px
    assert np.isclose(truth.ellipse.semi_major_px, scene.target.semi_major_px + grow_px)
    assert np.isclose(truth.ellipse.semi_minor_px, scene.target.semi_minor_px + grow_px)
    assert np.isclose(truth.hc_mm, truth.ellipse.perimeter_px * scene.mm_per_px)
