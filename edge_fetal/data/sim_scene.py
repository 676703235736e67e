"""Simulated scenes: one plane of one fetus under one probe, as the target shape plus tissue features.

`sample_scene` draws the fetus (sizes for its gestational age), a pixel spacing at which the
target fills a realistic part of the frame (HC18's spacings run 0.05-0.35 mm/px), a place for the
target inside the fan and away from the frame border, and the recipe of tissue features around
and inside it. Internal structures are laid out in the target's own axes, so they follow it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_fetal.biometry import Ellipse
from edge_fetal.data.sim_anatomy import (
    MM_PER_PX_RANGE,
    PLANES,
    FemurShape,
    SubjectSizes,
    ellipse_frame,
    ellipse_outline,
    ga_for_size_weeks,
    sample_early_subject,
    sample_subject,
)
from edge_fetal.data.sim_imaging import (
    FRAME_SIZE_WH,
    Imaging,
    ProbeGeometry,
    Pulse,
    imaging_for,
    polar_grid,
    pulse_for_depth,
    sample_probe,
)
from edge_fetal.data.sim_recipes import TARGET_RECIPES, early_head, early_sac, other_features
from edge_fetal.data.sim_tissue import FLUID_AMPLITUDE, Feature, Fields, NearField, make_fields

# target size in frame pixels: perimeter (head, abdomen) or length (femur); HC18 HC is 850-1570 px
TARGET_PX = {"head": (850.0, 1600.0), "abdomen": (850.0, 1500.0), "femur": (260.0, 520.0)}
EARLY_HEAD_PX = (500.0, 1300.0)  # HC18's heads under 100 mm: 510-1360 px (5th-95th percentile 600-1360)
EDGE_MARGIN_PX = 12.0


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one plane; `target` is in scene coordinates (frame at rest)."""

    plane: str
    subject: SubjectSizes
    mm_per_px: float
    probe: ProbeGeometry
    pulse: Pulse
    imaging: Imaging
    target: Ellipse | FemurShape | None
    features: tuple[Feature, ...]
    near_field: NearField
    tissue_fraction: float
    fields: Fields


def _outline(shape: Ellipse | FemurShape) -> np.ndarray:
    return shape.outline() if isinstance(shape, FemurShape) else ellipse_outline(shape, 72)


def target_fits(shape: Ellipse | FemurShape, probe: ProbeGeometry) -> bool:
    """True when the whole outline lies inside the fan and the frame, EDGE_MARGIN_PX clear of both."""
    pts = _outline(shape)
    m = EDGE_MARGIN_PX
    in_frame = (pts[:, 0] >= m) & (pts[:, 0] <= probe.width_px - 1 - m)
    in_frame &= (pts[:, 1] >= m) & (pts[:, 1] <= probe.height_px - 1 - m)
    return bool(in_frame.all() and probe.contains(pts[:, 0], pts[:, 1], margin_px=m).all())


def _placed_target(plane, rng, s: SubjectSizes, probe: ProbeGeometry, mm_per_px: float | None,
                   early_pregnancy: bool = False):
    """(mm_per_px, target, build) with the target inside the fan; shrinks the scale if it must."""
    size_mm = {"head": s.hc_mm, "abdomen": s.ac_mm, "femur": s.fl_mm}[plane]
    size_px = EARLY_HEAD_PX if early_pregnancy else TARGET_PX[plane]
    mmpx = mm_per_px if mm_per_px is not None else size_mm / rng.uniform(*size_px)
    mmpx = float(np.clip(mmpx, *MM_PER_PX_RANGE)) if mm_per_px is None else float(mm_per_px)
    recipe = early_head if early_pregnancy else TARGET_RECIPES[plane]
    for attempt in range(90):
        if attempt and attempt % 15 == 0 and mm_per_px is None:
            mmpx = min(mmpx * 1.12, MM_PER_PX_RANGE[1])
        # heads lie roughly across the image, femurs near horizontal (either end first), abdomens anyhow
        angle = {"head": rng.uniform(-40, 40), "femur": rng.uniform(-25, 25), "abdomen": rng.uniform(0, 180)}[plane]
        if plane == "femur" and rng.random() < 0.5:
            angle += 180.0
        target, _ = recipe(s, mmpx, 0.0, 0.0, angle)
        pts = _outline(target)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        m = EDGE_MARGIN_PX
        if hi[0] - lo[0] > probe.width_px - 2 * m or hi[1] - lo[1] > probe.height_px - 2 * m:
            continue
        cx = rng.uniform(m - lo[0], probe.width_px - 1 - m - hi[0])
        cy = rng.uniform(m - lo[1], probe.height_px - 1 - m - hi[1])
        target, build = recipe(s, mmpx, cx, cy, angle)
        # prefer some maternal tissue and fluid between the probe face and the fetus
        gap_px = min(8.0 / mmpx, 0.12 * (probe.radius_max_px - probe.radius_min_px)) if attempt < 60 else 0.0
        deep_enough = probe.polar(*_outline(target).T)[0].min() >= probe.radius_min_px + gap_px
        if deep_enough and target_fits(target, probe):
            return mmpx, target, build
    raise ValueError(f"a {plane} of this size does not fit the fan at {mmpx:.3f} mm/px")


def _near_field(rng, room_mm: float) -> NearField:
    """Skin, fat, fascia, rectus muscle, fascia, myometrium; squeezed to fit above the target."""
    layers = [(rng.uniform(1.0, 2.0), 1.8), (rng.uniform(3.0, 15.0), 0.4), (rng.uniform(0.6, 1.2), 2.2),
              (rng.uniform(4.0, 10.0), 0.9), (rng.uniform(0.6, 1.0), 1.8), (rng.uniform(4.0, 10.0), 0.75)]
    total = sum(t for t, _ in layers)
    k = min(1.0, max(room_mm, 1.0) / total)
    return NearField(tuple((t * k, amp) for t, amp in layers))


def sample_scene(
    plane: str,
    rng: np.random.Generator,
    *,
    subject: SubjectSizes | None = None,
    ga_weeks: float | None = None,
    mm_per_px: float | None = None,
    probe: ProbeGeometry | None = None,
    size_wh: tuple[int, int] = FRAME_SIZE_WH,
    early_pregnancy: bool = False,
) -> Scene:
    """A random scene of `plane` ("head", "abdomen", "femur" or "other").

    early_pregnancy: a late-first-trimester head (10.5-14 weeks) in its fluid-filled sac, often
    lying against the sac wall, with the fetal trunk beside it; only for plane "head".
    """
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {PLANES}, got {plane!r}")
    if early_pregnancy and (plane != "head" or ga_weeks is not None or subject is not None):
        raise ValueError("early_pregnancy applies to a head scene whose age the simulator draws itself")
    if early_pregnancy:
        subject = sample_early_subject(rng)
    if subject is None and ga_weeks is None and mm_per_px is not None and plane in TARGET_PX:
        # a spacing without an age: pick the age at which the target has a realistic size in px
        measure = {"head": "hc", "abdomen": "ac", "femur": "fl"}[plane]
        ga_weeks = ga_for_size_weeks(measure, rng.uniform(*TARGET_PX[plane]) * float(mm_per_px))
    subject = subject if subject is not None else sample_subject(rng, ga_weeks)
    probe = probe if probe is not None else sample_probe(rng, *size_wh)
    if plane == "other":
        mmpx = float(mm_per_px) if mm_per_px is not None else float(rng.uniform(0.07, 0.25))
        target, build = None, None
        room_px = 0.35 * (probe.radius_max_px - probe.radius_min_px)
    else:
        mmpx, target, build = _placed_target(plane, rng, subject, probe, mm_per_px, early_pregnancy)
        r, _ = probe.polar(*_outline(target).T)
        room_px = min(0.8 * (r.min() - probe.radius_min_px), 0.35 * (probe.radius_max_px - probe.radius_min_px))
    pulse = pulse_for_depth((probe.radius_max_px - probe.radius_min_px) * mmpx, rng)
    tissue = 0.05 * pulse.frequency_mhz / 8.686  # 0.5 dB/cm/MHz in nepers per mm
    near = _near_field(rng, room_px * mmpx)
    features: list[Feature] = []
    if rng.random() < (0.6 if target is None else 0.35):
        features += _placenta(rng, probe, mmpx, sum(t for t, _ in near.layers) / mmpx, target, tissue)
    if early_pregnancy:
        features += early_sac(rng, target, mmpx, tissue)
    elif target is not None and rng.random() < (0.8 if isinstance(target, Ellipse) else 0.5):
        features.append(_fluid_around(rng, target, mmpx, tissue))  # amniotic fluid around the fetus
    elif target is None and rng.random() < 0.7:
        r = rng.uniform(15, 45) / mmpx
        pocket = Ellipse(rng.uniform(0.2, 0.8) * probe.width_px, rng.uniform(0.35, 0.8) * probe.height_px,
                         r, r * rng.uniform(0.5, 0.9), rng.uniform(0, 180))
        features.append(Feature(pocket, FLUID_AMPLITUDE, 0.03 * tissue, ragged=0.15))
    features += other_features(rng, mmpx, probe, tissue) if build is None else build(rng, tissue)
    imaging = imaging_for(pulse, polar_grid(probe), mmpx, rng)
    return Scene(plane, subject, mmpx, probe, pulse, imaging, target, tuple(features), near,
                 float(rng.uniform(0.25, 0.75)), make_fields(rng, probe.width_px, probe.height_px))


def _fluid_around(rng, target: Ellipse | FemurShape, mmpx: float, tissue: float) -> Feature:
    """A pocket of amniotic fluid with a ragged edge around the target."""
    if isinstance(target, Ellipse):
        e, k = target, rng.uniform(1.15, 1.6)
    else:
        centre = 0.5 * (target.end0_xy[0] + target.end1_xy[0]), 0.5 * (target.end0_xy[1] + target.end1_xy[1])
        a, b = 0.5 * target.length_px + 8 / mmpx, 0.5 * target.width_px + 12 / mmpx
        e = Ellipse(*centre, a, b, target.angle_deg % 180.0)
        k = rng.uniform(1.0, 1.3)
    return Feature(Ellipse(e.center_x_px, e.center_y_px, k * e.semi_major_px, k * e.semi_minor_px, e.angle_deg),
                   FLUID_AMPLITUDE, 0.03 * tissue, ragged=0.12)


def _placenta(rng, probe: ProbeGeometry, mmpx: float, wall_px: float, target, tissue: float) -> list[Feature]:
    """An anterior (under the maternal wall) or posterior placenta clear of the target, or none."""
    thickness = rng.uniform(15.0, 40.0) / mmpx
    half_width = rng.uniform(0.5, 1.1) * probe.width_px
    x = rng.uniform(0.2, 0.8) * probe.width_px
    top = probe.apex_y_px + probe.radius_min_px + wall_px
    y = top + 0.5 * thickness if rng.random() < 0.6 else probe.height_px - rng.uniform(0.1, 0.5) * thickness
    body = Ellipse(x, y, half_width, 0.5 * thickness, rng.uniform(-8.0, 8.0))
    if target is not None:
        u, v = ellipse_frame(body, *_outline(target).T)
        if (u * u + v * v).min() < 1.2:
            return []
    plate = max(0.8 / mmpx, 2.0)  # the chorionic plate: a bright line on the fetal side
    return [Feature(body, rng.uniform(1.1, 1.5), tissue, texture=0.35),
            Feature(body, rng.uniform(1.8, 2.6), tissue, ring_px=plate, specular=0.5)]
