"""Where an HC outline sits on the skull echo: the offset that carries HC18's annotation
convention over to the simulator.

HC18's experts drew the ellipse on the outer border of the skull *as displayed* (van den Heuvel
et al. 2018); the simulator knows the geometric outer edge of the bone, which the beam blurs
outward. Both are compared on the same displayed-image feature: the mean grey profile across the
outline (averaged all the way round, so speckle averages out) and the point, outside the skull
echo's peak, where the grey falls half-way from that peak to the level outside the head.

`python -m edge_fetal.data.skull_edge` prints, for real HC18 training frames and for simulated
heads, where that half-grey point lies relative to the truth outline, in mm; their difference is
`HC18_OUTLINE_OFFSET_MM` in `sim_render`.
"""

from __future__ import annotations

import argparse
import math

import cv2
import numpy as np

from edge_fetal.biometry import Ellipse

PROFILE_MM = np.arange(-4.0, 4.0001, 0.05)  # offsets along the outward normal
ANGLES = np.linspace(0.0, 2.0 * math.pi, 360, endpoint=False)


def mean_normal_profile(image: np.ndarray, ellipse: Ellipse, mm_per_px: float) -> np.ndarray:
    """Mean grey at each `PROFILE_MM` offset along the outline's outward normals (NaN: never inside the frame)."""
    cos_t, sin_t = np.cos(ANGLES), np.sin(ANGLES)
    a, b = ellipse.semi_major_px, ellipse.semi_minor_px
    rot = math.radians(ellipse.angle_deg)
    c, s = math.cos(rot), math.sin(rot)
    # point and outward normal in the ellipse's frame, then rotated into the image
    px, py = a * cos_t, b * sin_t
    nx, ny = b * cos_t, a * sin_t
    norm = np.hypot(nx, ny)
    nx, ny = nx / norm, ny / norm
    x0 = ellipse.center_x_px + c * px - s * py
    y0 = ellipse.center_y_px + s * px + c * py
    dx, dy = c * nx - s * ny, s * nx + c * ny
    steps = PROFILE_MM / mm_per_px
    xs = (x0[:, None] + dx[:, None] * steps[None, :]).astype(np.float32)
    ys = (y0[:, None] + dy[:, None] * steps[None, :]).astype(np.float32)
    h, w = image.shape[:2]
    inside = ((xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)).all(axis=1)
    if not inside.any():
        return np.full(len(PROFILE_MM), np.nan)
    grey = cv2.remap(image.astype(np.float32), xs[inside], ys[inside], cv2.INTER_LINEAR)
    return grey.mean(axis=0)


def outer_half_grey_mm(profile: np.ndarray) -> float | None:
    """Offset (mm) where the profile, going outward from the skull echo's peak, first falls half-way
    to the grey outside the head; None when the profile shows no clear skull echo."""
    if np.isnan(profile).any():
        return None
    near = np.abs(PROFILE_MM) <= 2.0
    peak_index = int(np.flatnonzero(near)[np.argmax(profile[near])])
    outside = float(np.median(profile[PROFILE_MM >= 3.0]))
    peak = float(profile[peak_index])
    if peak - outside < 10.0:  # grey levels: no echo worth calling a skull
        return None
    half = 0.5 * (peak + outside)
    beyond = np.flatnonzero(profile[peak_index:] < half)
    if len(beyond) == 0:
        return None
    j = peak_index + int(beyond[0])
    # linear interpolation between the last sample above and the first below
    t0, t1, g0, g1 = PROFILE_MM[j - 1], PROFILE_MM[j], profile[j - 1], profile[j]
    return float(t0 + (g0 - half) * (t1 - t0) / (g0 - g1))


def _real_offsets(hc18_dir: str, limit: int) -> list[float]:
    from pathlib import Path

    from edge_fetal.data.hc18 import load_image, read_annotation, read_hc18
    from edge_fetal.engines import default_model_path, load_manifest, validation_subjects

    root = Path(hc18_dir)
    held_out = validation_subjects(load_manifest(default_model_path()))
    items = read_hc18(root / "training_set_pixel_size_and_HC.csv", root / "training_set")
    train = [item for item in items if item.subject not in held_out]  # the shipped model's training side
    offsets = []
    for item in train[:limit]:
        ellipse, _ = read_annotation(item)
        value = outer_half_grey_mm(mean_normal_profile(load_image(item.image_path), ellipse, item.mm_per_px))
        if value is not None:
            offsets.append(value)
    return offsets


def _sim_offsets(count: int, seed: int) -> list[float]:
    from edge_fetal.data.sim_render import render_scene
    from edge_fetal.data.sim_imaging import polar_grid
    from edge_fetal.data.sim_scene import sample_scene

    offsets = []
    for index in range(count):
        rng = np.random.default_rng(seed + index)
        scene = sample_scene("head", rng)
        image = render_scene(scene, rng.standard_normal(polar_grid(scene.probe).shape, dtype=np.float32))
        value = outer_half_grey_mm(mean_normal_profile(image, scene.target, scene.mm_per_px))
        if value is not None:
            offsets.append(value)
    return offsets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hc18", default="../shared/data/hc18")
    parser.add_argument("--real", type=int, default=634, help="HC18 training frames to use")
    parser.add_argument("--sim", type=int, default=150, help="simulated heads to render")
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args(argv)
    real = np.array(_real_offsets(args.hc18, args.real))
    sim = np.array(_sim_offsets(args.sim, args.seed))
    for name, values in (("real HC18 (annotation)", real), ("simulated (geometric bone edge)", sim)):
        print(f"{name}: half-grey point at {np.median(values):+.3f} mm from the outline "
              f"(median of {len(values)}; IQR {np.percentile(values, 25):+.3f} .. {np.percentile(values, 75):+.3f})")
    print(f"offset to add to the simulated outline: {np.median(sim) - np.median(real):+.3f} mm")


if __name__ == "__main__":
    main()
