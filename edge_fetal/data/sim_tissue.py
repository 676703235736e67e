"""Tissue maps for the simulator: where each tissue is, how strongly it scatters and attenuates.

A scene is a background (maternal wall, uterine content, smooth texture fields) plus a list of
`Feature`s painted in order, each an ellipse, an elliptical band or a curved bar with a scattering
amplitude (RMS, soft tissue = 1) and a one-way attenuation (nepers per mm). Bone features are
brightest where the beam meets their surface at normal incidence (specular reflection).

Maps are evaluated on the probe's polar grid, at the scene coordinates of each sample
(`Motion.inverse` of its frame position), each feature only inside the window of the polar grid
that its bounding box covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.biometry import Ellipse
from edge_fetal.data.sim_anatomy import FemurShape, Motion, ellipse_frame, ellipse_outline
from edge_fetal.data.sim_imaging import PolarGrid, ProbeGeometry

FIELD_CELL_PX = 8  # resolution of the smooth texture fields
FLUID_AMPLITUDE = 0.02


@dataclass(frozen=True)
class Feature:
    """One tissue region painted over what is already there.

    ring_px > 0 paints only the band of that thickness just inside an ellipse's outline.
    specular in [0, 1]: share of the brightness that depends on the beam's incidence angle.
    texture: depth of modulation by the scene's fine smooth field; ragged: the same for an
    ellipse's outline (a fluid pocket's irregular edge).
    """

    shape: Ellipse | FemurShape
    amplitude: float
    attenuation_np_per_mm: float
    ring_px: float = 0.0
    specular: float = 0.0
    texture: float = 0.0
    ragged: float = 0.0


@dataclass(frozen=True)
class NearField:
    """Maternal abdominal wall under the probe face: (thickness mm, amplitude) layers, top down."""

    layers: tuple[tuple[float, float], ...]


@dataclass(eq=False)
class Fields:
    """Smooth zero-mean, unit-variance random fields over the scene (Cartesian, low resolution)."""

    coarse: np.ndarray  # float32 [h, w]
    fine: np.ndarray


def make_fields(rng: np.random.Generator, width_px: int, height_px: int) -> Fields:
    h, w = height_px // FIELD_CELL_PX + 8, width_px // FIELD_CELL_PX + 8

    def field(sigma_x: float, sigma_y: float) -> np.ndarray:
        noise = rng.standard_normal((h, w)).astype(np.float32)
        f = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y)
        f -= f.mean()
        return f / max(float(f.std()), 1e-6)

    # tissue is layered more along the probe face than across it: wider than tall
    return Fields(field(8.0, 5.0), field(3.0, 1.2))


def sample_fields(fields: Fields, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both fields at scene points (bilinear; the field grid starts 4 cells left of / above 0)."""
    mx = xs * (1.0 / FIELD_CELL_PX) + 4.0
    my = ys * (1.0 / FIELD_CELL_PX) + 4.0
    return tuple(
        cv2.remap(f, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for f in (fields.coarse, fields.fine)
    )


def shape_bbox(shape: Ellipse | FemurShape, pad_px: float) -> tuple[float, float, float, float]:
    pts = shape.outline() if isinstance(shape, FemurShape) else ellipse_outline(shape, 32)
    lo, hi = pts.min(axis=0) - pad_px, pts.max(axis=0) + pad_px
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _extent(shape: Ellipse | FemurShape) -> float:
    return shape.semi_major_px if isinstance(shape, Ellipse) else shape.length_px


def polar_window(probe: ProbeGeometry, grid: PolarGrid, bbox) -> tuple[slice, slice] | None:
    """Rows and columns of the polar grid whose samples may fall inside a frame bounding box."""
    x0, y0, x1, y1 = bbox
    xs = np.array([x0, x1, x1, x0])
    ys = np.array([y0, y0, y1, y1])
    r, theta = probe.polar(xs, ys)
    n_samples, n_lines = grid.shape
    half = math.radians(probe.half_angle_deg)
    cx = min(max(probe.apex_x_px, x0), x1)
    cy = min(max(probe.apex_y_px, y0), y1)
    r_lo = math.hypot(cx - probe.apex_x_px, cy - probe.apex_y_px)
    inside = x0 <= probe.apex_x_px <= x1 and y0 <= probe.apex_y_px <= y1
    t_lo, t_hi = (-half, half) if inside or y1 <= probe.apex_y_px else (theta.min(), theta.max())
    rows = np.array([r_lo, r.max()]) - probe.radius_min_px
    rows = rows / (probe.radius_max_px - probe.radius_min_px) * (n_samples - 1)
    cols = (np.array([t_lo, t_hi]) + half) / (2 * half) * (n_lines - 1)
    r0, r1 = max(int(rows[0]) - 1, 0), min(int(math.ceil(rows[1])) + 2, n_samples)
    c0, c1 = max(int(cols[0]) - 1, 0), min(int(math.ceil(cols[1])) + 2, n_lines)
    if r0 >= r1 or c0 >= c1:
        return None
    return slice(r0, r1), slice(c0, c1)


def _incidence(nx, ny, bs, bc) -> np.ndarray:
    """|cos| of the angle between a surface normal (nx, ny) and the beam direction (bs, bc)."""
    return np.abs(nx * bs + ny * bc) / np.maximum(np.hypot(nx, ny), 1e-9)


def _feature_region(feature: Feature, xs, ys, bs, bc, fine):
    """(inside mask, brightness factor or None) of a feature at scene points."""
    shape = feature.shape
    if isinstance(shape, FemurShape):
        inside = shape.contains(xs, ys)
        if not feature.specular:
            return inside, None
        t = math.radians(shape.angle_deg)
        return inside, _incidence(-math.sin(t), math.cos(t), bs, bc)
    u, v = ellipse_frame(shape, xs, ys)
    rho2 = u * u + v * v
    inside = rho2 <= 1.0 if not feature.ragged else rho2 <= np.square(1.0 + feature.ragged * fine)
    if feature.ring_px <= 0 and not feature.specular:
        return inside, None
    a, b = shape.semi_major_px, shape.semi_minor_px
    gu, gv = u / a, v / b  # gradient of the normalised radius, in the ellipse's axes (times rho)
    if feature.ring_px > 0:
        rho = np.sqrt(rho2)
        distance = (1.0 - rho) * rho / np.maximum(np.hypot(gu, gv), 1e-9)
        inside &= distance <= feature.ring_px
    if not feature.specular:
        return inside, None
    t = math.radians(shape.angle_deg)
    c, s = math.cos(t), math.sin(t)
    return inside, _incidence(gu * c - gv * s, gu * s + gv * c, bs, bc)


def paint_features(amplitude, attenuation, features, xs, ys, fine, probe, grid, motion: Motion) -> None:
    """Paint `features` in order into the polar maps (in place)."""
    t = math.radians(motion.rotation_deg)
    c, s = math.cos(t), math.sin(t)
    # beam direction of each line, rotated into scene coordinates
    bs = (c * grid.beam_sin + s * grid.beam_cos)[None, :]
    bc = (-s * grid.beam_sin + c * grid.beam_cos)[None, :]
    for feature in features:
        x0, y0, x1, y1 = shape_bbox(feature.shape, 2.0 + 3.5 * feature.ragged * _extent(feature.shape))
        corners = np.array(motion.forward(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1])))
        window = polar_window(probe, grid, (*corners.min(axis=1), *corners.max(axis=1)))
        if window is None:
            continue
        rows, cols = window
        inside, facing = _feature_region(
            feature, xs[rows, cols], ys[rows, cols], bs[:, cols], bc[:, cols], fine[rows, cols]
        )
        value = np.full(inside.shape, feature.amplitude, np.float32)
        if facing is not None:
            value *= (1.0 - feature.specular) + feature.specular * facing * facing
        if feature.texture:
            value *= np.maximum(1.0 + feature.texture * fine[rows, cols], 0.05)
        np.copyto(amplitude[rows, cols], value, where=inside)
        attenuation[rows, cols][inside] = feature.attenuation_np_per_mm


def near_field_profile(near: NearField, depth_mm: np.ndarray) -> tuple[np.ndarray, float]:
    """(amplitude per depth sample, NaN below the wall; wall thickness mm)."""
    profile = np.full(depth_mm.shape, np.nan, np.float32)
    top = 0.0
    for thickness, amp in near.layers:
        profile[(depth_mm >= top) & (depth_mm < top + thickness)] = amp
        top += thickness
    return profile, top


def background_maps(near: NearField, threshold: float, coarse, fine, depth_mm, tissue_att: float):
    """(amplitude, attenuation, rows of maternal wall) over uterine content: tissue where the
    coarse field exceeds `threshold`, amniotic fluid elsewhere."""
    # tissue share: a soft step of the coarse field, blended in the log domain (grey levels)
    share = cv2.exp((threshold - coarse) * 6.0)
    share = 1.0 / (1.0 + share)
    log_tissue = 0.4 * fine + 0.25 * coarse  # echogenicity varies by a few dB
    amplitude = np.exp(share * (log_tissue - math.log(FLUID_AMPLITUDE)) + math.log(FLUID_AMPLITUDE)).astype(np.float32)
    attenuation = (tissue_att * (0.03 + 0.97 * share)).astype(np.float32)
    profile, _ = near_field_profile(near, depth_mm)
    wall = ~np.isnan(profile)
    n_wall = int(wall.sum())
    if n_wall:
        amplitude[:n_wall] = profile[:n_wall, None] * np.maximum(1.0 + 0.3 * fine[:n_wall], 0.1)
        attenuation[:n_wall] = tissue_att
    return amplitude, attenuation, n_wall
