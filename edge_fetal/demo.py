"""`edge-fetal demo`: the main job on data bundled with the package, so it runs on a fresh machine.

A built-in scan: a real HC18 head (bundled, CC BY 4.0) held under a slightly moving probe, then
simulated abdomen and femur segments of a fetus of the same age, with "other" tissue between
them. It streams through the shipped model and the whole engine (fusion, overlay, reports).
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from edge_fetal.biometry.clinical import ga_from_hc_weeks
from edge_fetal.calibration import PixelSpacing
from edge_fetal.data.hc18 import load_image
from edge_fetal.data.simulator import render_sweep

ATTRIBUTION = "Real head frame: HC18 (van den Heuvel et al. 2018, PLoS ONE 13(8): e0200412), CC BY 4.0"
# A mid-pregnancy head clear of the image border. 746_2HC, the first choice, has its head 3 px
# from the bottom edge: the fitted-box model reads it as touching the border and withholds it.
# Of the other bundled frames, 278_HC is the one both that model and the one before measure
# under the demo's hand motion within 0.4 % (490_HC fails the shape-quality gate with either).
DEMO_HEAD = "278_HC.png"
FPS = 25.0
HEAD_FRAMES = 40
SIM_SEGMENTS = (("other", 10), ("abdomen", 40), ("other", 10), ("femur", 40))
DEMO_SEED = 2026


def bundled_hc18_dir() -> Path:
    """The folder of real HC18 example frames shipped inside the package."""
    return Path(str(resources.files("edge_fetal") / "assets" / "hc18"))


def bundled_head() -> tuple[np.ndarray, float, float]:
    """The demo's real head frame, its pixel spacing (mm) and its expert HC (mm) from HC18."""
    folder = bundled_hc18_dir()
    with open(folder / "hc18_examples.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["filename"] == DEMO_HEAD)
    return load_image(folder / DEMO_HEAD), float(row["pixel size(mm)"]), float(row["head circumference (mm)"])


def hand_motion(image: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """`count` views of a still frame under a hand's slight motion (≤ 3 px, ≤ 1.5°) with fresh noise."""
    rng = np.random.default_rng(seed)
    height, width = image.shape
    views = []
    for index in range(count):
        phase = 2 * math.pi * index / count
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 1.5 * math.sin(phase), 1.0)
        matrix[:, 2] += (3 * math.cos(phase), 2 * math.sin(2 * phase))
        moved = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR)
        noise = rng.normal(1.0, 0.06, image.shape).astype(np.float32)
        views.append(np.clip(moved.astype(np.float32) * noise, 0, 255).astype(np.uint8))
    return views


def demo_scan() -> tuple[list[np.ndarray], list[PixelSpacing], dict]:
    """Frames, per-frame spacing and what is known about the scan (truth for the printout)."""
    head, head_spacing, head_hc_mm = bundled_head()
    frames = hand_motion(head, HEAD_FRAMES, DEMO_SEED)
    spacings = [PixelSpacing(head_spacing, "HC18 CSV (bundled)")] * HEAD_FRAMES
    ga_weeks = ga_from_hc_weeks(head_hc_mm)
    truth = {"hc_mm": head_hc_mm, "ga_weeks": ga_weeks}
    for sim in render_sweep(DEMO_SEED, SIM_SEGMENTS, ga_weeks=ga_weeks, size_wh=head.shape[::-1]):
        frames.append(sim.image)
        spacings.append(PixelSpacing(sim.truth.mm_per_px, "simulator truth"))
        for name in ("ac_mm", "fl_mm"):
            if getattr(sim.truth, name) is not None:
                truth.setdefault(name + "_frames", []).append(getattr(sim.truth, name))
    return frames, spacings, truth


def run_demo(out_dir: Path, backend, progress=None, replace_previous: bool = False) -> dict:
    """Stream the built-in scan through `backend` into `out_dir`; return the final report.
    An earlier run's outputs there are refused, or replaced with `replace_previous` (`run_stream`)."""
    from edge_fetal.stream import StreamConfig, run_stream
    from edge_fetal.stream.readers import ArrayReader
    from edge_fetal.stream.sources import FrameSource

    frames, spacings, truth = demo_scan()
    reader = ArrayReader(frames, fps=FPS, spacings=spacings, description="built-in demo scan (HC18 head + simulated abdomen/femur)")
    report = run_stream(FrameSource(reader), backend, StreamConfig(), out_dir, progress=progress,
                        replace_previous=replace_previous)
    report["demo_truth"] = {
        "hc_mm (HC18 expert, real)": truth["hc_mm"],
        "ac_mm (simulated, mean over frames)": float(np.mean(truth["ac_mm_frames"])),
        "fl_mm (simulated, mean over frames)": float(np.mean(truth["fl_mm_frames"])),
        "ga_weeks (Hadlock 1984 from the expert HC)": truth["ga_weeks"],
    }
    return report
