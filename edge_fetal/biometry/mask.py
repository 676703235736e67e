"""Checks and geometry on binary structure masks: validation, the main component, its boundary.

The boundary is taken where it really is: half-way between an inside pixel centre and the
outside pixel centre next to it ("crack" points). Fitting the outer contour's pixel centres
instead reads the outline about half a pixel too large.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.errors import MaskError


@dataclass(frozen=True)
class RegionCounts:
    """What the quality checks need to know of a mask's regions, in the pixels lengths are measured in."""

    area_px: int
    components: int  # connected regions in the mask
    second_area_px: int  # area inside the next largest region's outer border (0 when there is none)
    touches_border: bool


@dataclass(frozen=True)
class MainComponent:
    """The largest connected region of a mask, holes filled, with what was left aside."""

    mask: np.ndarray  # bool, same shape as the input
    area_px: int
    components: int  # connected regions in the input mask (regions inside another's hole not counted)
    second_area_px: int  # area inside the next largest region's outer border (0 when there is one)
    touches_border: bool
    border_xy: np.ndarray  # int [K, 2] (x, y): the region's outer border pixels, each once

    def counts(self, source_px_per_px: float = 1.0) -> RegionCounts:
        """The counts the quality checks read; areas times `source_px_per_px` when this mask is
        coarser than the pixels the lengths are measured in (a model-resolution mask)."""
        return RegionCounts(round(self.area_px * source_px_per_px), self.components,
                            round(self.second_area_px * source_px_per_px), self.touches_border)


def as_binary_mask(mask: np.ndarray) -> np.ndarray:
    """Validate a structure mask and return it as bool.

    Accepts bool, or integer masks holding only 0 and one other value (1 or 255 typically).
    Anything else is a caller error that would silently give wrong lengths, so it raises.
    """
    array = np.asarray(mask)
    if array.ndim != 2:
        raise MaskError(f"a structure mask must be 2-D (height, width), got shape {array.shape}")
    if min(array.shape) < 3:
        raise MaskError(f"a structure mask must be at least 3x3 pixels, got {array.shape}")
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise MaskError(f"a structure mask must be boolean or integer, got dtype {array.dtype}")
    values = np.unique(array)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:6])
        raise MaskError(f"a structure mask must hold 0 and one foreground value, got values {shown}")
    return array != 0


def main_component(mask: np.ndarray) -> MainComponent:
    """The largest 8-connected region of `mask` with its holes filled.

    Regions are found by their outer borders (OpenCV border following), which visits only the
    outline instead of labelling every pixel: the stream measures every frame at source
    resolution, and this is where that time went (benchmarks/results/PROFILE.md).
    """
    binary = as_binary_mask(mask)
    borders, _ = cv2.findContours(np.ascontiguousarray(binary, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not borders:
        return MainComponent(np.zeros_like(binary), 0, 0, 0, False, np.zeros((0, 2), np.int32))
    order = sorted(range(len(borders)), key=lambda i: _area_estimate(borders[i]), reverse=True)
    filled = np.zeros(binary.shape, np.uint8)
    cv2.drawContours(filled, borders, order[0], 1, thickness=cv2.FILLED)
    second = _filled_area(borders[order[1]]) if len(borders) > 1 else 0
    x, y, w, h = cv2.boundingRect(borders[order[0]])
    touches = x == 0 or y == 0 or x + w == binary.shape[1] or y + h == binary.shape[0]
    width = binary.shape[1]
    pixel_ids = _distinct(borders[order[0]].reshape(-1, 2) @ np.array([1, width]))  # one-pixel-wide parts are traced twice
    border_xy = np.stack([pixel_ids % width, pixel_ids // width], axis=1)
    return MainComponent(filled.view(bool), int(cv2.countNonZero(filled)), len(borders), second, bool(touches), border_xy)


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (as `np.unique`, whose hash-based path costs ~5x more on a
    border's few hundred ids; this runs on every frame)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _area_estimate(border: np.ndarray) -> float:
    """Pixels inside an outer border by Pick's theorem (polygon area + half its border pixels + 1),
    exact for a simple border; enough to rank regions without drawing each one."""
    return cv2.contourArea(border) + len(border) / 2 + 1


def _filled_area(border: np.ndarray) -> int:
    """Pixels inside one outer border (the region with its holes filled), drawn in its bounding box only."""
    x, y, w, h = cv2.boundingRect(border)
    canvas = np.zeros((h, w), np.uint8)
    cv2.drawContours(canvas, [border - np.array([x, y], dtype=border.dtype)], 0, 1, thickness=cv2.FILLED)
    return int(cv2.countNonZero(canvas))


def boundary_points(component: MainComponent) -> np.ndarray:
    """Sub-pixel boundary of the main component: midpoints between each border pixel's centre and
    the centre of each 4-neighbour outside the region (within the image).

    Returns float32 `[K, 2]` (x, y). For a mask rasterised with the pixel-centre convention
    these points scatter symmetrically about the true outline.
    """
    # a frame of "inside" around the mask: neighbours beyond the image never count as outside
    inside = np.ascontiguousarray(component.mask).view(np.uint8)
    framed = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1).ravel()
    stride = inside.shape[1] + 2
    centres = (component.border_xy[:, 1] + 1) * stride + component.border_xy[:, 0] + 1  # flat ids in `framed`
    points = []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        outside = framed[centres + dy * stride + dx] == 0
        points.append(component.border_xy[outside] + (0.5 * dx, 0.5 * dy))
    return np.concatenate(points).astype(np.float32)
