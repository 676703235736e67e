"""Femur length: the end-to-end extent of the bone along its long axis.

Clinically FL is the straight distance between the two ends of the ossified diaphysis. A slightly
curved bone bends its centreline, not its chord, so the length is the extent of the bone's
boundary projected on its principal axis (parallel to the chord for a symmetric bend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.errors import MaskError


@dataclass(frozen=True)
class FemurAxis:
    """The measured bone: end points (x, y) in pixels, its length and mean width."""

    end_a_xy: tuple[float, float]
    end_b_xy: tuple[float, float]
    length_px: float
    width_px: float
    centreline_residual_px: float  # RMS roughness of the centreline about a smooth curve

    def shifted(self, dx_px: float, dy_px: float) -> "FemurAxis":
        """The same bone moved by (dx, dy) pixels."""
        a, b = self.end_a_xy, self.end_b_xy
        return FemurAxis((a[0] + dx_px, a[1] + dy_px), (b[0] + dx_px, b[1] + dy_px), self.length_px, self.width_px,
                         self.centreline_residual_px)

    @property
    def angle_deg(self) -> float:
        dx = self.end_b_xy[0] - self.end_a_xy[0]
        dy = self.end_b_xy[1] - self.end_a_xy[1]
        return math.degrees(math.atan2(dy, dx)) % 180.0


def femur_axis(mask: np.ndarray, boundary_xy: np.ndarray) -> FemurAxis:
    """Long axis, end points and length of a bar-shaped region.

    `mask` is the filled region (bool), `boundary_xy` its sub-pixel boundary points.
    """
    region = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)  # no copy for the usual bool mask
    moments = cv2.moments(region, binaryImage=True)
    if moments["m00"] == 0:
        raise MaskError("a femur axis needs a region, and the mask is empty")
    centre = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
    _, vectors = np.linalg.eigh(np.array([[moments["mu20"], moments["mu11"]], [moments["mu11"], moments["mu02"]]]))
    along = vectors[:, 1]  # principal direction (largest eigenvalue)
    across = np.array([-along[1], along[0]])
    xs, ys = cv2.findNonZero(region).reshape(-1, 2).T  # row by row, as np.nonzero, at a third of its cost
    dx, dy = xs - centre[0], ys - centre[1]

    boundary = np.asarray(boundary_xy, dtype=np.float64) - centre
    t_min, t_max = _end_positions(boundary @ along)

    t_pixels = dx * along[0] + dy * along[1]
    s_pixels = dx * across[0] + dy * across[1]
    centreline, residual = _centreline(t_pixels, s_pixels)
    end_a = centre + t_min * along + centreline(t_min) * across
    end_b = centre + t_max * along + centreline(t_max) * across
    length = t_max - t_min
    width = float(len(xs)) / max(length, 1e-9)
    return FemurAxis(tuple(end_a.tolist()), tuple(end_b.tolist()), length, width, residual)


def _end_positions(t_boundary: np.ndarray) -> tuple[float, float]:
    """Where each end face really is along the axis.

    Boundary points on a tilted end face scatter up to half a pixel either side of it, so the
    single extreme point reads long; the mean of the points within one pixel of each extreme
    sits on the face.
    """
    low, high = float(t_boundary.min()), float(t_boundary.max())
    t_low = float(t_boundary[t_boundary <= low + 1.0].mean())
    t_high = float(t_boundary[t_boundary >= high - 1.0].mean())
    return t_low, t_high


def _centreline(t: np.ndarray, s: np.ndarray):
    """A quadratic through the per-pixel-slab mean offsets, and the RMS of the slabs about it."""
    slab = np.floor(t - t.min()).astype(np.int64)
    counts = np.bincount(slab)
    sums = np.bincount(slab, weights=s)
    centres = np.bincount(slab, weights=t)
    keep = counts > 0
    slab_t = centres[keep] / counts[keep]
    slab_s = sums[keep] / counts[keep]
    degree = 2 if len(slab_t) >= 5 else 0
    coefficients = np.polyfit(slab_t, slab_s, degree)
    residual = float(np.sqrt(np.mean((np.polyval(coefficients, slab_t) - slab_s) ** 2)))
    return (lambda value: float(np.polyval(coefficients, value))), residual
