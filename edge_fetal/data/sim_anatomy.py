"""Simulated fetal anatomy: sizes for gestational age, exact continuous shapes, their masks.

Pure geometry, no image formation. Coordinates are source pixels (x right, y down); integer
coordinates are pixel centres and a pixel belongs to a shape when its centre is inside the
shape's continuous outline (the project's mask convention, see `edge_fetal.biometry.ellipse`).

Sizes at gestational age (menstrual weeks) are Hadlock's regressions of mean size on age
(Hadlock FP, Deter RL, Harrist RB, Park SK. Estimating fetal age: computer-assisted analysis of
multiple fetal growth parameters. Radiology 1984;152:497-501), in cm:
HC = -11.48 + 1.56 GA - 0.0002548 GA^3, AC = -13.3 + 1.61 GA - 0.00998 GA^2,
FL = -3.91 + 0.427 GA - 0.0034 GA^2 (HC 97 mm at 14 w to 346 mm at 40 w). A subject varies
around the mean by a few percent; its cephalic index BPD/OFD lies in 0.70-0.86.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from edge_fetal.biometry import Ellipse, ramanujan_perimeter

PLANES = ("head", "abdomen", "femur", "other")
MASK_LABELS = {"head": 1, "abdomen": 2, "femur": 3}
GA_RANGE_WEEKS = (14.0, 40.0)
# Early-pregnancy heads (late first trimester): HC 46-97 mm at the mean, as HC18's smallest heads
# (44-100 mm). Hadlock's HC regression is extrapolated below its 14-week range for these.
EARLY_GA_RANGE_WEEKS = (10.5, 14.0)
MM_PER_PX_RANGE = (0.05, 0.30)


# --- sizes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectSizes:
    """One fetus: gestational age and its head, abdomen and femur sizes in mm."""

    ga_weeks: float
    hc_mm: float
    cephalic_index: float  # BPD / OFD
    ac_mm: float
    abdomen_aspect: float  # minor / major axis of the abdominal outline
    fl_mm: float
    femur_width_mm: float
    femur_bend: float  # signed sagitta of the femur's centreline / its length
    skull_thickness_mm: float


def mean_sizes_mm(ga_weeks: float) -> tuple[float, float, float]:
    """Hadlock 1984 mean (HC, AC, FL) in mm at `ga_weeks`."""
    ga = float(ga_weeks)
    hc = -11.48 + 1.56 * ga - 0.0002548 * ga**3
    ac = -13.3 + 1.61 * ga - 0.00998 * ga**2
    fl = -3.91 + 0.427 * ga - 0.0034 * ga**2
    return 10.0 * hc, 10.0 * ac, 10.0 * fl


def ga_for_size_weeks(measure: str, size_mm: float) -> float:
    """The age (clipped to 14-40 weeks) at which the Hadlock mean of `measure` (hc|ac|fl) is `size_mm`."""
    index = {"hc": 0, "ac": 1, "fl": 2}[measure]
    lo, hi = GA_RANGE_WEEKS
    for _ in range(40):  # every mean size grows monotonically over 14-40 weeks
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_sizes_mm(mid)[index] < size_mm else (lo, mid)
    return 0.5 * (lo + hi)


def sample_subject(rng: np.random.Generator, ga_weeks: float | None = None) -> SubjectSizes:
    """A random fetus at `ga_weeks` (uniform in 14-40 weeks when None)."""
    ga = float(rng.uniform(*GA_RANGE_WEEKS)) if ga_weeks is None else float(ga_weeks)
    if not GA_RANGE_WEEKS[0] <= ga <= GA_RANGE_WEEKS[1]:
        raise ValueError(f"ga_weeks must lie in {GA_RANGE_WEEKS}, got {ga}")
    hc, ac, fl = mean_sizes_mm(ga)
    growth = (ga - GA_RANGE_WEEKS[0]) / (GA_RANGE_WEEKS[1] - GA_RANGE_WEEKS[0])
    vary = rng.normal(1.0, 0.035, size=3).clip(0.9, 1.1)
    return SubjectSizes(
        ga_weeks=ga,
        hc_mm=hc * vary[0],
        cephalic_index=float(rng.uniform(0.70, 0.86)),
        ac_mm=ac * vary[1],
        abdomen_aspect=float(rng.uniform(0.82, 0.98)),
        fl_mm=fl * vary[2],
        femur_width_mm=float(2.0 + 3.0 * growth + rng.uniform(-0.3, 0.3)),
        femur_bend=float(rng.uniform(0.01, 0.035) * rng.choice([-1.0, 1.0])),
        skull_thickness_mm=float(1.2 + 2.0 * growth + rng.uniform(-0.2, 0.2)),
    )


def sample_early_subject(rng: np.random.Generator) -> SubjectSizes:
    """A fetus of 10.5-14 weeks for an early-pregnancy head frame: small head, thin and faintly
    ossified skull. Only the head's sizes are meant to be used (the other planes stay 14-40 weeks)."""
    ga = float(rng.uniform(*EARLY_GA_RANGE_WEEKS))
    hc, ac, fl = mean_sizes_mm(ga)
    vary = rng.normal(1.0, 0.05, size=3).clip(0.85, 1.15)
    return SubjectSizes(
        ga_weeks=ga,
        hc_mm=hc * vary[0],
        cephalic_index=float(rng.uniform(0.72, 0.88)),
        ac_mm=ac * vary[1],
        abdomen_aspect=float(rng.uniform(0.82, 0.98)),
        fl_mm=max(fl * vary[2], 1.0),
        femur_width_mm=1.5,
        femur_bend=0.0,
        skull_thickness_mm=float(rng.uniform(0.5, 1.0)),
    )


def semi_axes_for_perimeter(perimeter: float, minor_over_major: float) -> tuple[float, float]:
    """Semi-axes (a >= b) of the ellipse with the given Ramanujan perimeter and axis ratio."""
    a = float(perimeter) / ramanujan_perimeter(1.0, minor_over_major)
    return a, a * float(minor_over_major)


# --- shapes -----------------------------------------------------------------------------------


def ellipse_frame(ellipse: Ellipse, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates (u along the major axis / a, v along the minor axis / b)."""
    t = math.radians(ellipse.angle_deg)
    c, s = math.cos(t), math.sin(t)
    dx, dy = x - ellipse.center_x_px, y - ellipse.center_y_px
    return (dx * c + dy * s) / ellipse.semi_major_px, (dy * c - dx * s) / ellipse.semi_minor_px


def ellipse_mask(ellipse: Ellipse, shape_hw: tuple[int, int]) -> np.ndarray:
    """Bool mask of the pixels whose centres satisfy the ellipse inequality.

    Row by row: on row y the inequality is a quadratic in x, so the inside pixels are the
    integers between its two roots (exact, and much faster than testing every pixel).
    """
    height, width = shape_hw
    mask = np.zeros((height, width), bool)
    t = math.radians(ellipse.angle_deg)
    c, s = math.cos(t), math.sin(t)
    ia2, ib2 = 1.0 / ellipse.semi_major_px**2, 1.0 / ellipse.semi_minor_px**2
    qa = c * c * ia2 + s * s * ib2  # Q(dx, dy) = qa dx^2 + qb dx dy + qc dy^2 <= 1
    qb = 2.0 * c * s * (ia2 - ib2)
    qc = s * s * ia2 + c * c * ib2
    reach_y = math.sqrt(4.0 * qa / (4.0 * qa * qc - qb * qb))  # half-height of the ellipse
    y0 = max(int(math.ceil(ellipse.center_y_px - reach_y)), 0)
    y1 = min(int(math.floor(ellipse.center_y_px + reach_y)), height - 1)
    if y0 > y1:
        return mask
    ys = np.arange(y0, y1 + 1, dtype=np.float64)
    dy = ys - ellipse.center_y_px
    disc = qb * qb * dy * dy - 4.0 * qa * (qc * dy * dy - 1.0)
    root = np.sqrt(np.maximum(disc, 0.0))
    lo = np.ceil(ellipse.center_x_px + (-qb * dy - root) / (2.0 * qa)).astype(int)
    hi = np.floor(ellipse.center_x_px + (-qb * dy + root) / (2.0 * qa)).astype(int)
    lo, hi = np.maximum(lo, 0), np.minimum(hi, width - 1)
    for row, a, b, ok in zip(range(y0, y1 + 1), lo, hi, disc >= 0.0):
        if ok and a <= b:
            mask[row, a : b + 1] = True
    return mask


def ellipse_outline(ellipse: Ellipse, n: int = 96) -> np.ndarray:
    """`n` points (x, y) on the outline, float64 [n, 2]."""
    phi = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    t = math.radians(ellipse.angle_deg)
    u, v = ellipse.semi_major_px * np.cos(phi), ellipse.semi_minor_px * np.sin(phi)
    x = ellipse.center_x_px + u * math.cos(t) - v * math.sin(t)
    y = ellipse.center_y_px + u * math.sin(t) + v * math.cos(t)
    return np.stack([x, y], axis=1)


@dataclass(frozen=True)
class FemurShape:
    """A slightly curved bone: a band of constant width around a circular-arc centreline.

    The centreline runs from end 0 to end 1 and bows by `sagitta_px` at mid-length (positive:
    towards the left normal of end0 -> end1, i.e. (-dy, dx)). The ends are flat cuts
    perpendicular to the chord, so the bone's extent along the chord, the femur length, is
    exactly the chord length |end1 - end0|.
    """

    end0_xy: tuple[float, float]
    end1_xy: tuple[float, float]
    width_px: float
    sagitta_px: float

    @property
    def length_px(self) -> float:
        return math.dist(self.end0_xy, self.end1_xy)

    @property
    def angle_deg(self) -> float:
        return math.degrees(math.atan2(self.end1_xy[1] - self.end0_xy[1], self.end1_xy[0] - self.end0_xy[0]))

    def local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t along the chord from its midpoint, d signed distance from the centreline), px."""
        (x0, y0), (x1, y1) = self.end0_xy, self.end1_xy
        length = self.length_px
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        dx, dy = x - 0.5 * (x0 + x1), y - 0.5 * (y0 + y1)
        t, v = dx * ux + dy * uy, dy * ux - dx * uy  # v along the left normal (-uy, ux)
        s = self.sagitta_px
        if abs(s) < 1e-6:
            return t, v
        radius = (0.25 * length * length + s * s) / (2.0 * abs(s))
        sign = 1.0 if s > 0 else -1.0
        vc = sign * v - (abs(s) - radius)  # offset from the circle centre along the normal
        d = np.sqrt(t * t + vc * vc) - radius
        return t, np.where(vc > 0, d, np.inf)

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        t, d = self.local(x, y)
        return (np.abs(t) <= 0.5 * self.length_px) & (np.abs(d) <= 0.5 * self.width_px)

    def mask(self, shape_hw: tuple[int, int]) -> np.ndarray:
        height, width = shape_hw
        mask = np.zeros((height, width), bool)
        pts = self.outline()
        x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x0 < x1 and y0 < y1:
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
            mask[y0:y1, x0:x1] = self.contains(xs, ys)
        return mask

    def centreline(self, n: int = 33) -> np.ndarray:
        """`n` points (x, y) on the centreline from end 0 to end 1."""
        (x0, y0), (x1, y1) = self.end0_xy, self.end1_xy
        length = self.length_px
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        t = np.linspace(-0.5 * length, 0.5 * length, n)
        v = np.zeros_like(t) if abs(self.sagitta_px) < 1e-6 else _arc_offset(t, length, self.sagitta_px)
        return np.stack([0.5 * (x0 + x1) + t * ux - v * uy, 0.5 * (y0 + y1) + t * uy + v * ux], axis=1)

    def outline(self, n: int = 33) -> np.ndarray:
        """Points around the bone's outline, float64 [2n, 2]."""
        c = self.centreline(n)
        tangent = np.gradient(c, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        half = 0.5 * self.width_px
        return np.concatenate([c + half * normal, (c - half * normal)[::-1]])


def _arc_offset(t: np.ndarray, length: float, s: float) -> np.ndarray:
    radius = (0.25 * length * length + s * s) / (2.0 * abs(s))
    return np.sign(s) * (np.sqrt(radius * radius - t * t) - (radius - abs(s)))


# --- per-frame motion -------------------------------------------------------------------------


@dataclass(frozen=True)
class Motion:
    """Similarity transform scene -> frame about a pivot: scale, rotate, then translate."""

    dx_px: float = 0.0
    dy_px: float = 0.0
    rotation_deg: float = 0.0
    scale: float = 1.0
    pivot_xy: tuple[float, float] = (0.0, 0.0)

    def _cs(self) -> tuple[float, float]:
        t = math.radians(self.rotation_deg)
        return self.scale * math.cos(t), self.scale * math.sin(t)

    def forward(self, x, y):
        """Scene coordinates -> frame coordinates."""
        c, s = self._cs()
        px, py = self.pivot_xy
        return px + self.dx_px + c * (x - px) - s * (y - py), py + self.dy_px + s * (x - px) + c * (y - py)

    def inverse(self, x, y):
        """Frame coordinates -> scene coordinates."""
        c, s = self._cs()
        k = 1.0 / (c * c + s * s)
        px, py = self.pivot_xy
        rx, ry = x - px - self.dx_px, y - py - self.dy_px
        return px + k * (c * rx + s * ry), py + k * (c * ry - s * rx)


def move_ellipse(ellipse: Ellipse, motion: Motion) -> Ellipse:
    cx, cy = motion.forward(ellipse.center_x_px, ellipse.center_y_px)
    return Ellipse(
        float(cx), float(cy), ellipse.semi_major_px * motion.scale, ellipse.semi_minor_px * motion.scale,
        (ellipse.angle_deg + motion.rotation_deg) % 180.0,
    )


def move_femur(femur: FemurShape, motion: Motion) -> FemurShape:
    e0, e1 = (tuple(float(v) for v in motion.forward(*p)) for p in (femur.end0_xy, femur.end1_xy))
    return replace(femur, end0_xy=e0, end1_xy=e1, width_px=femur.width_px * motion.scale,
                   sagitta_px=femur.sagitta_px * motion.scale)
