"""Simulated probe sweeps: video through planes, with per-frame truth.

    for frame in render_sweep(7, [("head", 40), ("other", 10), ("abdomen", 40), ("femur", 40)]):
        frame.image, frame.mask, frame.truth

One fetus (one gestational age) and one probe for the whole sweep. Each segment is one plane of
that fetus: its anatomy is fixed while the hand jitters, a smooth random walk of translation,
rotation and scale of the section (the truth follows the section exactly). The scatterer field
decorrelates a little each frame (speckle changes, but persists like real video) and is redrawn
at a segment change. An "other" segment keeps the previous segment's pixel spacing.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from edge_fetal.biometry import Ellipse
from edge_fetal.data.sim_anatomy import PLANES, Motion, move_ellipse, move_femur, sample_subject
from edge_fetal.data.sim_imaging import FRAME_SIZE_WH, add_scanner_overlay, polar_grid, sample_probe
from edge_fetal.data.sim_scene import sample_scene, target_fits
from edge_fetal.data.sim_render import SimFrame, render_scene, truth_for, truth_mask

DEFAULT_SEGMENTS = (("head", 40), ("other", 10), ("abdomen", 40), ("other", 10), ("femur", 40))


def _target_fits(scene, motion: Motion) -> bool:
    if scene.target is None:
        return True
    move = move_ellipse if isinstance(scene.target, Ellipse) else move_femur
    return target_fits(move(scene.target, motion), scene.probe)


def _pivot(scene) -> tuple[float, float]:
    t = scene.target
    if isinstance(t, Ellipse):
        return (t.center_x_px, t.center_y_px)
    if t is not None:
        return (0.5 * (t.end0_xy[0] + t.end1_xy[0]), 0.5 * (t.end0_xy[1] + t.end1_xy[1]))
    return (0.5 * scene.probe.width_px, 0.6 * scene.probe.height_px)


def render_sweep(
    seed: int,
    segments: Sequence[tuple[str, int]] = DEFAULT_SEGMENTS,
    *,
    ga_weeks: float | None = None,
    size_wh: tuple[int, int] = FRAME_SIZE_WH,
    speckle_correlation: float = 0.9,
    jitter_px: float = 3.0,
    jitter_deg: float = 1.5,
    jitter_scale: float = 0.015,
    scanner_overlay: bool = False,
) -> Iterator[SimFrame]:
    """Frames of a sweep through `segments` [(plane, n_frames), ...], generated lazily.

    jitter_*: stationary standard deviations of the hand's motion (translation px, rotation
    degrees, relative scale of the section); speckle_correlation: frame-to-frame correlation
    of the scatterer field within a segment (0 = fresh speckle every frame).
    """
    for plane, n in segments:
        if plane not in PLANES or int(n) < 0:
            raise ValueError(f"bad sweep segment ({plane!r}, {n!r}): plane must be one of {PLANES}, n >= 0")
    if not 0.0 <= speckle_correlation < 1.0:
        raise ValueError(f"speckle_correlation must lie in [0, 1), got {speckle_correlation}")
    rng = np.random.default_rng(seed)
    subject = sample_subject(rng, ga_weeks)
    probe = sample_probe(rng, *size_wh)
    shape = polar_grid(probe).shape
    overlay_seed = int(rng.integers(2**31))
    mm_per_px = None
    rho = 0.85  # frame-to-frame correlation of the hand's motion
    innovation = math.sqrt(1.0 - rho * rho)
    for plane, n in segments:
        if n == 0:
            continue
        scene = sample_scene(plane, rng, subject=subject, probe=probe,
                             mm_per_px=mm_per_px if plane == "other" else None)
        mm_per_px = scene.mm_per_px
        pivot = _pivot(scene)
        scatterers = rng.standard_normal(shape, dtype=np.float32)
        keep_clear = truth_mask(truth_for(scene), (probe.height_px, probe.width_px)) > 0
        state = np.zeros(4)  # dx, dy, rotation, log scale
        sd = np.array([jitter_px, jitter_px, jitter_deg, jitter_scale])
        for i in range(int(n)):
            if i:
                state = rho * state + innovation * sd * rng.standard_normal(4)
                fresh = rng.standard_normal(shape, dtype=np.float32)
                scatterers *= np.float32(speckle_correlation)
                scatterers += np.float32(math.sqrt(1.0 - speckle_correlation**2)) * fresh
            motion = Motion(*(float(v) for v in state[:3]), math.exp(float(state[3])), pivot)
            for _ in range(6):  # keep the target inside the fan: pull the hand back
                if _target_fits(scene, motion):
                    break
                state *= 0.5
                motion = Motion(*(float(v) for v in state[:3]), math.exp(float(state[3])), pivot)
            else:
                state[:] = 0.0
                motion = Motion(pivot_xy=pivot)
            image = render_scene(scene, scatterers, motion)
            truth = truth_for(scene, motion)
            mask = truth_mask(truth, image.shape)
            if scanner_overlay:  # the screen furniture stays put within a segment
                add_scanner_overlay(image, np.random.default_rng(overlay_seed), keep_clear=keep_clear)
            yield SimFrame(image, mask, truth, probe)
