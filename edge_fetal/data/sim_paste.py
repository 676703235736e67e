"""Simulated structures on real backgrounds: real HC18 texture around a simulated target.

`paste_on_background(background, plane, seed, mm_per_px=..., exclude=head_mask)` renders a
simulated frame of `plane` at the background's pixel spacing and keeps the simulated pixels only
near its target (and over `exclude`, e.g. the real head, which would otherwise contradict the
label); everywhere else the real frame shows through, with a feathered seam and the simulated
grey levels matched to the real ones along it. With plane "other" only `exclude` is covered:
a real frame whose head is hidden under simulated tissue. The mask and truth are the simulated
ones, so a classifier trained on such frames cannot use "real texture" as a cue for "head".
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from edge_fetal.data.sim_anatomy import PLANES
from edge_fetal.data.sim_render import FramePlan, SimFrame, plan_frame, render_plan

_TRIES = 40


def _disk(radius_px: float) -> np.ndarray:
    r = max(int(round(radius_px)), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _morph_disk(mask: np.ndarray, radius_px: float, operation: Callable) -> np.ndarray:
    """`mask` dilated or eroded (`operation`: cv2.dilate or cv2.erode) by `_disk(radius_px)`, as a bool array.

    Works on the mask's bounding box grown by the disk's reach, which gives the whole-frame
    result exactly (nothing farther than the reach can change) at a fraction of the cost for
    a small target and a wide disk (a training frame needs several such operations).
    """
    disk = _disk(radius_px)
    reach = disk.shape[0] // 2 + 1
    ys, xs = np.nonzero(mask)
    out = np.zeros(mask.shape, bool)
    if ys.size == 0:
        return out
    y0, x0 = max(ys.min() - reach, 0), max(xs.min() - reach, 0)
    y1, x1 = min(ys.max() + reach + 1, mask.shape[0]), min(xs.max() + reach + 1, mask.shape[1])
    out[y0:y1, x0:x1] = operation(mask[y0:y1, x0:x1].astype(np.uint8), disk).astype(bool)
    return out


def real_fan(background: np.ndarray) -> np.ndarray:
    """Bool mask of a real frame's imaged area: non-black, closed, black fluid inside filled."""
    nonblack = cv2.morphologyEx((background > 0).astype(np.uint8), cv2.MORPH_CLOSE, _disk(7))
    contours, _ = cv2.findContours(nonblack, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(nonblack)
    cv2.drawContours(filled, [c for c in contours if cv2.contourArea(c) > 2000], -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def paste_on_background(
    background: np.ndarray,
    plane: str,
    seed: int,
    *,
    mm_per_px: float,
    exclude: np.ndarray | None = None,
    ga_weeks: float | None = None,
    margin_mm: float = 8.0,
    feather_px: float = 10.0,
) -> SimFrame:
    """A simulated `plane` target blended into a real uint8 frame of spacing `mm_per_px`.

    exclude: bool mask of real content to hide (the HC18 head, e.g. its filled annotation);
    margin_mm: how much simulated tissue surrounds the target. Raises ValueError when no
    placement inside the real fan is found.
    """
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {PLANES}, got {plane!r}")
    if background.dtype != np.uint8 or background.ndim != 2:
        raise ValueError(f"background must be a 2-D uint8 frame, got {background.dtype} {background.shape}")
    h, w = background.shape
    fan = real_fan(background)
    inner_fan = cv2.erode(fan.astype(np.uint8), _disk(6)).astype(bool)
    margin_px = margin_mm / mm_per_px
    hidden = np.zeros((h, w), bool) if exclude is None else _morph_disk(exclude, margin_px, cv2.dilate) & fan
    if plane == "other" and not hidden.any():
        raise ValueError("plane 'other' on a real background needs a non-empty `exclude` region to cover")
    for k in range(_TRIES):
        plan = plan_frame(plane, seed * _TRIES + k, ga_weeks=ga_weeks, mm_per_px=mm_per_px, size_wh=(w, h))
        region = _placement_region(plan, fan, inner_fan, hidden, margin_px)
        if region is not None:
            sim = render_plan(plan)
            return SimFrame(_blend(background, sim.image, region, fan, feather_px), sim.mask, sim.truth, sim.probe)
    raise ValueError(f"no placement of a simulated {plane} inside this frame's fan at {mm_per_px} mm/px")


def _placement_region(plan: FramePlan, fan: np.ndarray, inner_fan: np.ndarray, hidden: np.ndarray,
                      margin_px: float) -> np.ndarray | None:
    """Where the plan's simulated pixels go: its target with `margin_px` around it, and `hidden`,
    inside the real fan. None when the target leaves the real fan or the region leaves the
    simulated fan. The tests that need no dilation come first, as most plans fail one of them.
    """
    target = plan.mask > 0
    if target.any() and not (target <= inner_fan).all():
        return None
    sim_fan = cv2.erode(plan.scene.probe.fan_mask().astype(np.uint8), _disk(3)).astype(bool)
    if not (hidden <= sim_fan).all() or not ((target & fan) <= sim_fan).all():
        return None  # both lie inside the region, so the region would leave the simulated fan
    region = (hidden | _morph_disk(target, margin_px, cv2.dilate)) & fan
    return region if (region <= sim_fan).all() else None


def _blend(real: np.ndarray, sim: np.ndarray, region: np.ndarray, fan: np.ndarray, feather_px: float) -> np.ndarray:
    """Real outside `region`, simulated inside; grey levels matched on a band along the seam."""
    seam = _morph_disk(region, 3 * feather_px, cv2.dilate) & ~region & fan & (real > 0)
    inner = region & ~_morph_disk(region, 3 * feather_px, cv2.erode) & (sim > 0)
    gain = 1.0
    if seam.sum() > 50 and inner.sum() > 50:
        gain = float(np.clip(np.median(real[seam]) / max(float(np.median(sim[inner])), 1.0), 0.5, 2.0))
    outside = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)
    alpha = np.clip(1.0 - outside / feather_px, 0.0, 1.0) * fan  # 1 in the region, fading outside
    out = alpha * np.minimum(sim.astype(np.float32) * gain, 255.0) + (1.0 - alpha) * real.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
