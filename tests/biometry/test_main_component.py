"""The main component and its sub-pixel boundary, against a plain pixel-by-pixel reading of the mask.

The stream measures every frame through these two functions; if they picked the wrong region,
left a hole in it or lost part of its outline, every HC and AC shown would be off.
"""

import cv2
import numpy as np
import pytest

from edge_fetal.biometry.mask import boundary_points, main_component


def crack_points_by_scan(region: np.ndarray) -> set[tuple[float, float]]:
    """Every midpoint between 4-neighbouring pixels on opposite sides of the region's edge."""
    rows_h, cols_h = np.nonzero(region[:, :-1] != region[:, 1:])
    rows_v, cols_v = np.nonzero(region[:-1, :] != region[1:, :])
    return {(c + 0.5, float(r)) for r, c in zip(rows_h, cols_h)} | {(float(c), r + 0.5) for r, c in zip(rows_v, cols_v)}


def blob_mask(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    height, width = rng.integers(20, 90, 2)
    return cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 3) > 0.5


@pytest.mark.parametrize("seed", range(40))
def test_boundary_is_every_edge_crossing_of_the_largest_region_holes_filled(seed):
    mask = blob_mask(seed)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        pytest.skip("this seed drew an empty mask")
    largest = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    background = np.pad(largest, 1).astype(np.uint8)  # 0 around it: the flood reaches all outside background
    cv2.floodFill(background, None, (0, 0), 2)
    filled = (background != 2)[1:-1, 1:-1]

    component = main_component(mask)
    points = boundary_points(component)

    assert np.array_equal(component.mask, filled)
    assert component.area_px == int(filled.sum())
    assert {tuple(p) for p in points.tolist()} == crack_points_by_scan(filled)
    assert len(points) == len(crack_points_by_scan(filled)), "an outline point was counted twice"
    assert component.touches_border == bool(filled[0].any() or filled[-1].any() or filled[:, 0].any() or filled[:, -1].any())
    assert 1 <= component.components <= count - 1  # regions inside a hole are not counted


def test_ring_is_filled_and_measured_on_its_outer_edge_only():
    mask = np.zeros((40, 40), bool)
    cv2.circle(mask.view(np.uint8), (20, 20), 12, 1, thickness=2)
    component = main_component(mask)
    assert component.mask[20, 20], "the hole inside the ring was not filled"
    points = boundary_points(component)
    radii = np.hypot(points[:, 0] - 20, points[:, 1] - 20)
    assert radii.min() > 11.5, "points on the ring's inner edge were kept"


def test_the_larger_region_wins_and_the_other_is_reported():
    mask = np.zeros((50, 80), bool)
    mask[10:40, 5:35] = True  # 900 px
    mask[20:30, 50:60] = True  # 100 px
    component = main_component(mask)
    assert component.mask[25, 20] and not component.mask[25, 55]
    assert (component.area_px, component.second_area_px, component.components) == (900, 100, 2)
    assert not component.touches_border


def test_a_region_cut_by_the_image_edge_is_flagged():
    mask = np.zeros((30, 30), bool)
    mask[0:10, 5:15] = True
    assert main_component(mask).touches_border
