"""Rendering a scene: tissue maps -> B-mode frame, plus the frame's truth and label mask.

`render_frame` is the one-call entry (re-exported by `edge_fetal.data.simulator`); pasting plans
frames first (`plan_frame`, `render_plan`); sweeps build on `render_scene`, `truth_for` and
`truth_mask`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_fetal.biometry import Ellipse
from edge_fetal.data.sim_anatomy import (
    MASK_LABELS,
    FemurShape,
    Motion,
    ellipse_mask,
    move_ellipse,
    move_femur,
)
from edge_fetal.data.sim_imaging import (
    FRAME_SIZE_WH,
    ProbeGeometry,
    add_scanner_overlay,
    form_bmode,
    polar_grid,
    scan_convert,
)
from edge_fetal.data.sim_scene import Scene, sample_scene
from edge_fetal.data.sim_tissue import background_maps, paint_features, sample_fields

_STILL = Motion()

# How far outside the bone's geometric outer edge HC18's annotations sit, in mm: HC18 outlines lie
# 0.28 mm inside the skull echo's outer half-grey point, the simulator's bone edge 0.89 mm inside it
# (medians of 298 real training frames and 60 simulated heads; `python -m edge_fetal.data.skull_edge
# --real 300 --sim 60`, 2026-11-28). Without it the head truth follows a different convention from
# the real data the model learns heads from, and simulated HC reads ~3.5 mm long.
HC18_OUTLINE_OFFSET_MM = 0.61


@dataclass(frozen=True)
class SimTruth:
    """Ground truth of one simulated frame; lengths in mm, geometry in frame pixels."""

    plane: str
    ga_weeks: float
    mm_per_px: float
    hc_mm: float | None = None
    bpd_mm: float | None = None
    ofd_mm: float | None = None
    ac_mm: float | None = None
    fl_mm: float | None = None
    ellipse: Ellipse | None = None  # head outline (outer border of the skull echo) or abdomen outline
    femur: FemurShape | None = None  # end points, width, sagitta

    @property
    def label(self) -> int:
        """The mask label of this frame's structure (0 for "other")."""
        return MASK_LABELS.get(self.plane, 0)


@dataclass(frozen=True)
class SimFrame:
    """One simulated frame: 8-bit B-mode image, label mask, truth, and the probe's fan."""

    image: np.ndarray
    mask: np.ndarray
    truth: SimTruth
    probe: ProbeGeometry


def truth_for(scene: Scene, motion: Motion = _STILL) -> SimTruth:
    """The truth of `scene` seen through `motion` (the target moves and scales with it).

    A head's outline is where HC18's experts would draw it: on the outer border of the skull
    echo as displayed, `HC18_OUTLINE_OFFSET_MM` outside the bone's geometric outer edge.
    """
    base = dict(plane=scene.plane, ga_weeks=scene.subject.ga_weeks, mm_per_px=scene.mm_per_px)
    k = scene.mm_per_px
    if isinstance(scene.target, Ellipse):
        e = move_ellipse(scene.target, motion)
        if scene.plane == "head":
            grow = HC18_OUTLINE_OFFSET_MM / k
            e = Ellipse(e.center_x_px, e.center_y_px, e.semi_major_px + grow, e.semi_minor_px + grow, e.angle_deg)
            return SimTruth(**base, hc_mm=e.perimeter_px * k, bpd_mm=e.minor_axis_px * k,
                            ofd_mm=e.major_axis_px * k, ellipse=e)
        return SimTruth(**base, ac_mm=e.perimeter_px * k, ellipse=e)
    if isinstance(scene.target, FemurShape):
        f = move_femur(scene.target, motion)
        return SimTruth(**base, fl_mm=f.length_px * k, femur=f)
    return SimTruth(**base)


def truth_mask(truth: SimTruth, shape_hw: tuple[int, int]) -> np.ndarray:
    """uint8 label mask of the truth's structure (pixel centres inside the continuous shape)."""
    if truth.ellipse is not None:
        inside = ellipse_mask(truth.ellipse, shape_hw)
    elif truth.femur is not None:
        inside = truth.femur.mask(shape_hw)
    else:
        return np.zeros(shape_hw, np.uint8)
    return inside.astype(np.uint8) * np.uint8(truth.label)


def scene_maps(scene: Scene, motion: Motion = _STILL) -> tuple[np.ndarray, np.ndarray]:
    """(scattering amplitude, attenuation np/mm) on the probe's polar grid."""
    grid = polar_grid(scene.probe)
    if motion == _STILL:
        xs, ys = grid.x_px, grid.y_px
    else:
        xs, ys = (np.asarray(v, np.float32) for v in motion.inverse(grid.x_px, grid.y_px))
    coarse, fine = sample_fields(scene.fields, xs, ys)
    tissue_att = scene.imaging.tissue_attenuation_np_per_mm
    threshold = float(np.quantile(scene.fields.coarse, 1.0 - scene.tissue_fraction))
    amp, att, n_wall = background_maps(
        scene.near_field, threshold, coarse, fine, grid.depth_px * scene.mm_per_px, tissue_att
    )
    wall_amp = amp[:n_wall].copy()
    paint_features(amp, att, scene.features, xs, ys, fine, scene.probe, grid, motion)
    amp[:n_wall], att[:n_wall] = wall_amp, tissue_att  # the maternal wall stays in front
    return amp, att


def render_scene(scene: Scene, scatterers: np.ndarray, motion: Motion = _STILL) -> np.ndarray:
    """uint8 [H, W] B-mode frame of `scene` with a given unit-variance scatterer field."""
    amp, att = scene_maps(scene, motion)
    return scan_convert(form_bmode(amp, att, scatterers, scene.imaging), polar_grid(scene.probe))


@dataclass(frozen=True)
class FramePlan:
    """A frame's scene, truth and label mask, drawn from its seed before any pixel is formed.

    Enough to judge where the target lies, so that a caller trying many seeds for a placement
    (pasting onto a real frame) pays for image formation once. `rng_state` is the seed's
    generator where image formation goes on from it, so `render_plan` gives what `render_frame`
    gives for the same arguments, bit for bit.
    """

    scene: Scene
    truth: SimTruth
    mask: np.ndarray
    rng_state: dict


def plan_frame(
    plane: str,
    seed: int,
    *,
    ga_weeks: float | None = None,
    mm_per_px: float | None = None,
    size_wh: tuple[int, int] = FRAME_SIZE_WH,
    early_pregnancy: bool = False,
) -> FramePlan:
    """The plan of `render_frame`'s frame for these arguments (same meanings, same errors)."""
    rng = np.random.default_rng(seed)
    scene = sample_scene(plane, rng, ga_weeks=ga_weeks, mm_per_px=mm_per_px, size_wh=size_wh,
                         early_pregnancy=early_pregnancy)
    truth = truth_for(scene)
    mask = truth_mask(truth, (scene.probe.height_px, scene.probe.width_px))
    return FramePlan(scene, truth, mask, rng.bit_generator.state)


def render_plan(plan: FramePlan, *, scanner_overlay: bool = False) -> SimFrame:
    """The B-mode frame of `plan` (see `render_frame` for `scanner_overlay`)."""
    rng = np.random.default_rng()
    rng.bit_generator.state = plan.rng_state
    scatterers = rng.standard_normal(polar_grid(plan.scene.probe).shape, dtype=np.float32)
    image = render_scene(plan.scene, scatterers)  # [probe.height_px, probe.width_px], as the mask
    if scanner_overlay:
        add_scanner_overlay(image, rng, keep_clear=plan.mask > 0)
    return SimFrame(image, plan.mask, plan.truth, plan.scene.probe)


def render_frame(
    plane: str,
    seed: int,
    *,
    ga_weeks: float | None = None,
    mm_per_px: float | None = None,
    size_wh: tuple[int, int] = FRAME_SIZE_WH,
    scanner_overlay: bool = False,
    early_pregnancy: bool = False,
) -> SimFrame:
    """One still frame of `plane`; everything random is drawn from `seed`.

    mm_per_px: None picks a spacing at which the target fills a realistic part of the frame
    (raises ValueError when a given spacing makes the target too large for the fan).
    scanner_overlay: add the scanner's screen furniture (grey bar, black boxes, marks) outside
    the target, as on HC18 frames, so that it cannot tell real from simulated.
    early_pregnancy: a late-first-trimester head in its sac (`sample_scene`); plane "head" only.
    """
    plan = plan_frame(plane, seed, ga_weeks=ga_weeks, mm_per_px=mm_per_px, size_wh=size_wh,
                      early_pregnancy=early_pregnancy)
    return render_plan(plan, scanner_overlay=scanner_overlay)
