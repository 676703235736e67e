"""Ellipses: the fitted outline of a head or abdomen, its perimeter, and its rasterisation.

Convention used across the project: integer pixel coordinates are pixel *centres*, and a pixel
belongs to a structure when its centre lies inside the structure's continuous outline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in pixel coordinates; `angle_deg` is the direction of the major axis from +x."""

    center_x_px: float
    center_y_px: float
    semi_major_px: float
    semi_minor_px: float
    angle_deg: float

    @property
    def perimeter_px(self) -> float:
        return ramanujan_perimeter(self.semi_major_px, self.semi_minor_px)

    @property
    def major_axis_px(self) -> float:
        return 2.0 * self.semi_major_px

    @property
    def minor_axis_px(self) -> float:
        return 2.0 * self.semi_minor_px

    def shifted(self, dx_px: float, dy_px: float) -> "Ellipse":
        """The same ellipse moved by (dx, dy) pixels."""
        return Ellipse(self.center_x_px + dx_px, self.center_y_px + dy_px, self.semi_major_px, self.semi_minor_px,
                       self.angle_deg)

    def scaled(self, factor: float) -> "Ellipse":
        """The same ellipse with every length multiplied by `factor` (centre included)."""
        return Ellipse(
            self.center_x_px * factor,
            self.center_y_px * factor,
            self.semi_major_px * factor,
            self.semi_minor_px * factor,
            self.angle_deg,
        )


def ramanujan_perimeter(semi_a: float, semi_b: float) -> float:
    """Ellipse perimeter by Ramanujan's second approximation (relative error < 1e-9 for b/a ≥ 0.5).

    This is the formula the HC18 challenge used to turn the annotated ellipse into the head
    circumference (van den Heuvel et al. 2018, PLoS ONE 13(8): e0200412).
    """
    a, b = float(semi_a), float(semi_b)
    if a + b <= 0.0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1.0 + 3.0 * h / (10.0 + math.sqrt(4.0 - 3.0 * h)))


def fit_ellipse_to_points(points_xy: np.ndarray) -> Ellipse:
    """Least-squares ellipse through boundary points (Fitzgibbon's direct fit, always an ellipse)."""
    points = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
    if len(points) < 5:
        raise ValueError(f"an ellipse needs at least 5 boundary points, got {len(points)}")
    (cx, cy), (width, height), angle = cv2.fitEllipseDirect(points)
    # OpenCV's box: `width` lies along `angle`; make the major axis carry the angle.
    if width >= height:
        return Ellipse(cx, cy, width / 2.0, height / 2.0, angle % 180.0)
    return Ellipse(cx, cy, height / 2.0, width / 2.0, (angle + 90.0) % 180.0)


def ellipse_radial_residuals_px(ellipse: Ellipse, points_xy: np.ndarray) -> np.ndarray:
    """Approximate distance (px) of each point from the ellipse outline, signed (+ outside).

    Uses the first-order distance |F| / |grad F| of the implicit form, accurate near the curve.
    """
    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    theta = math.radians(ellipse.angle_deg)
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    dx = points[:, 0] - ellipse.center_x_px
    dy = points[:, 1] - ellipse.center_y_px
    u = dx * cos_t + dy * sin_t
    v = -dx * sin_t + dy * cos_t
    a2 = max(ellipse.semi_major_px, 1e-9) ** 2
    b2 = max(ellipse.semi_minor_px, 1e-9) ** 2
    implicit = u * u / a2 + v * v / b2 - 1.0
    gradient = 2.0 * np.hypot(u / a2, v / b2)
    return implicit / np.maximum(gradient, 1e-12)


def rasterise_ellipse(shape_hw: tuple[int, int], ellipse: Ellipse) -> np.ndarray:
    """Boolean mask of the pixels whose centres lie inside `ellipse` (the project's mask convention)."""
    height, width = shape_hw
    mask = np.zeros((height, width), dtype=bool)
    reach = ellipse.semi_major_px + 1.0
    x0, x1 = max(int(ellipse.center_x_px - reach), 0), min(int(ellipse.center_x_px + reach) + 1, width)
    y0, y1 = max(int(ellipse.center_y_px - reach), 0), min(int(ellipse.center_y_px + reach) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1]
    theta = math.radians(ellipse.angle_deg)
    dx = xs - ellipse.center_x_px
    dy = ys - ellipse.center_y_px
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    mask[y0:y1, x0:x1] = (u / ellipse.semi_major_px) ** 2 + (v / ellipse.semi_minor_px) ** 2 <= 1.0
    return mask
