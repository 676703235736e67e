"""Texture statistics of B-mode frames, to compare simulated frames with real HC18 frames.

The same estimators run on both sets, so no knowledge of the simulator's fan or anatomy is used:

- fan region: pixels that belong to the closed non-black area of the frame, eroded so that the
  fan border and the black scanner boxes stay out;
- grey-level histogram: 256 bins over the fan region, normalised to sum 1;
- speckle SNR: mean / std of the grey level in homogeneous 32x32 tiles inside the fan region.
  A tile is homogeneous when its heavily smoothed image is flat (small mean gradient relative to
  its mean); per frame the flattest quarter of the tiles brighter than 10 grey levels is used.
  Fully developed speckle gives 1.91 on the envelope; log compression raises it.

`compare_texture(real_paths, sim_frames)` returns a plain dict (JSON-able) with both sides'
statistics and the distances between the histograms; `format_texture_table` renders it as
Markdown. Run `python -m edge_fetal.data.sim_texture` to print the table for HC18 vs the simulator.
"""

from __future__ import annotations

import argparse
import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from edge_fetal.errors import DatasetError

TILE_PX = 32
_FLAT_FRACTION = 0.25
_MIN_TILE_MEAN = 10.0


@dataclass(frozen=True)
class TextureStats:
    """Statistics pooled over a set of frames."""

    n_frames: int
    histogram: np.ndarray  # float64 [256], fan-region grey levels, sums to 1
    mean_grey: float
    std_grey: float
    percentiles: dict  # {5, 25, 50, 75, 95: grey level} over the fan region
    speckle_snr: float  # median over homogeneous tiles of mean / std
    speckle_snr_iqr: tuple[float, float]
    n_tiles: int


def fan_region(frame: np.ndarray) -> np.ndarray:
    """Bool mask of the imaged (non-black) area, closed and eroded by 8 px."""
    nonblack = (frame > 0).astype(np.uint8)
    closed = cv2.morphologyEx(nonblack, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    return cv2.erode(closed, np.ones((17, 17), np.uint8)).astype(bool)


def homogeneous_tiles(frame: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Mean / std of each homogeneous tile of `frame` (see module docstring), float64 [K]."""
    region = fan_region(frame) if region is None else region
    img = frame.astype(np.float32)
    smooth = cv2.GaussianBlur(img, (0, 0), 6.0)
    grad = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    h, w = frame.shape
    snr, flatness = [], []
    for y in range(0, h - TILE_PX + 1, TILE_PX):
        for x in range(0, w - TILE_PX + 1, TILE_PX):
            if not region[y : y + TILE_PX, x : x + TILE_PX].all():
                continue
            tile = img[y : y + TILE_PX, x : x + TILE_PX]
            mean, std = float(tile.mean()), float(tile.std())
            if mean < _MIN_TILE_MEAN or std <= 0:
                continue
            snr.append(mean / std)
            flatness.append(float(grad[y : y + TILE_PX, x : x + TILE_PX].mean()) / mean)
    if not snr:
        return np.zeros(0)
    order = np.argsort(flatness)
    keep = order[: max(1, int(round(len(order) * _FLAT_FRACTION)))]
    return np.asarray(snr)[keep]


def texture_stats(frames: Iterable[np.ndarray]) -> TextureStats:
    """Pooled histogram, grey-level moments and speckle SNR of 8-bit greyscale frames."""
    hist = np.zeros(256, np.float64)
    snrs: list[np.ndarray] = []
    n = 0
    for frame in frames:
        if frame.dtype != np.uint8 or frame.ndim != 2:
            raise ValueError(f"frames must be 2-D uint8, got {frame.dtype} {frame.shape}")
        region = fan_region(frame)
        hist += np.bincount(frame[region], minlength=256)
        snrs.append(homogeneous_tiles(frame, region))
        n += 1
    if n == 0 or hist.sum() == 0:
        raise ValueError("texture_stats needs at least one frame with a non-black region")
    hist /= hist.sum()
    levels = np.arange(256)
    mean = float((hist * levels).sum())
    std = float(np.sqrt((hist * (levels - mean) ** 2).sum()))
    cdf = np.cumsum(hist)
    pct = {p: int(np.searchsorted(cdf, p / 100.0)) for p in (5, 25, 50, 75, 95)}
    all_snr = np.concatenate(snrs) if snrs else np.zeros(0)
    q25, q50, q75 = np.percentile(all_snr, [25, 50, 75]) if all_snr.size else (np.nan,) * 3
    return TextureStats(n, hist, mean, std, pct, float(q50), (float(q25), float(q75)), int(all_snr.size))


def histogram_distances(p: np.ndarray, q: np.ndarray) -> dict:
    """Distances between two normalised 256-bin histograms.

    emd_grey: earth mover's (Wasserstein-1) distance in grey levels; hellinger in [0, 1];
    intersection in [0, 1] (1 = identical).
    """
    emd = float(np.abs(np.cumsum(p) - np.cumsum(q)).sum())
    hellinger = float(np.sqrt(max(0.0, 1.0 - np.sqrt(p * q).sum())))
    return {"emd_grey": emd, "hellinger": hellinger, "intersection": float(np.minimum(p, q).sum())}


def _stats_dict(s: TextureStats) -> dict:
    return {
        "n_frames": s.n_frames,
        "mean_grey": round(s.mean_grey, 2),
        "std_grey": round(s.std_grey, 2),
        "percentiles": s.percentiles,
        "speckle_snr": round(s.speckle_snr, 3),
        "speckle_snr_iqr": [round(v, 3) for v in s.speckle_snr_iqr],
        "n_tiles": s.n_tiles,
    }


def compare_texture(real_paths: Sequence[str | Path], sim_frames: Iterable[np.ndarray]) -> dict:
    """Texture statistics of real frames (read from `real_paths`) vs simulated uint8 frames."""
    real_frames = []
    for path in real_paths:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DatasetError(f"{path}: cannot read image")
        real_frames.append(img)
    real, sim = texture_stats(real_frames), texture_stats(sim_frames)
    return {
        "real": _stats_dict(real),
        "sim": _stats_dict(sim),
        "histogram": histogram_distances(real.histogram, sim.histogram),
        "speckle_snr_ratio": round(sim.speckle_snr / real.speckle_snr, 3),
    }


def format_texture_table(result: dict) -> str:
    """Markdown table of a `compare_texture` result."""
    r, s, h = result["real"], result["sim"], result["histogram"]
    rows = [
        ("frames", r["n_frames"], s["n_frames"]),
        ("mean grey (fan)", r["mean_grey"], s["mean_grey"]),
        ("std grey (fan)", r["std_grey"], s["std_grey"]),
        *((f"p{k} grey", r["percentiles"][k], s["percentiles"][k]) for k in r["percentiles"]),
        ("speckle SNR (median)", r["speckle_snr"], s["speckle_snr"]),
        ("speckle SNR (IQR)", tuple(r["speckle_snr_iqr"]), tuple(s["speckle_snr_iqr"])),
    ]
    lines = ["| statistic | HC18 real | simulated |", "|---|---|---|"]
    lines += [f"| {name} | {a} | {b} |" for name, a, b in rows]
    lines.append(
        f"\nHistogram distance: EMD {h['emd_grey']:.2f} grey levels, Hellinger {h['hellinger']:.3f}, "
        f"intersection {h['intersection']:.3f}."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the HC18-vs-simulator texture table (and the JSON with --json)."""
    from edge_fetal.data.simulator import PLANES, render_frame

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real-glob", default="/work/shared/data/hc18/training_set/*_HC.png")
    ap.add_argument("--n-real", type=int, default=100)
    ap.add_argument("--n-sim", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    paths = sorted(glob.glob(args.real_glob))
    if not paths:
        raise SystemExit(f"no real frames match {args.real_glob}")
    step = max(1, len(paths) // args.n_real)
    sim = (render_frame(PLANES[i % 4], seed=args.seed + i).image for i in range(args.n_sim))
    result = compare_texture(paths[::step][: args.n_real], sim)
    print(json.dumps(result, indent=1) if args.json else format_texture_table(result))


if __name__ == "__main__":
    main()
