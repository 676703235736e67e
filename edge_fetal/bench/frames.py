"""The frames every benchmark variant runs on: real HC18 heads and simulated frames of every plane;
and the recorded scan that the offline line streams from a file.

Real frames come from the HC18 test-set sample (`../shared/data/hc18/test_set_sample`) when it is
there, else from the frames bundled with the package; simulated ones from `data.simulator`, one
seed per frame, so two runs on two machines time the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_fetal.calibration import letterbox, spacing_table_from_csv
from edge_fetal.data.hc18 import load_image
from edge_fetal.runtime.analyse import preprocess
from edge_fetal.runtime.backend import PLANES

SHARED_HC18 = Path(__file__).resolve().parents[3] / "shared" / "data" / "hc18"


@dataclass(frozen=True)
class BenchFrame:
    """One grey uint8 source frame, its mm per pixel and where it came from ("hc18 NNN_HC.png", "sim head #0")."""

    image: np.ndarray
    mm_per_px: float | None
    origin: str
    plane: str  # the plane it shows: "head" for HC18, the simulated plane otherwise


def real_frame_folder() -> tuple[Path, Path | None]:
    """(folder of HC18 frames, its spacing CSV): the shared test-set sample, else the bundled examples."""
    sample = SHARED_HC18 / "test_set_sample"
    if sample.is_dir():
        return sample, SHARED_HC18 / "test_set_sample_pixel_size.csv"
    from edge_fetal.demo import bundled_hc18_dir

    folder = bundled_hc18_dir()
    return folder, folder / "hc18_examples.csv"


def real_frames(count: int) -> list[BenchFrame]:
    """The first `count` HC18 frames (sorted by name) with their CSV spacing."""
    folder, csv_path = real_frame_folder()
    table = spacing_table_from_csv(csv_path) if csv_path is not None and csv_path.is_file() else {}
    paths = sorted(p for p in folder.glob("*HC.png"))[:count]
    return [BenchFrame(load_image(p), table[p.name].mm_per_px if p.name in table else None, f"hc18 {p.name}", "head")
            for p in paths]


def simulated_frames(per_plane: int, seed: int = 7) -> list[BenchFrame]:
    """`per_plane` simulated frames of each plane (head, abdomen, femur, other), planes in turn."""
    from edge_fetal.data.simulator import render_frame

    frames = []
    for index in range(per_plane):
        for offset, plane in enumerate(PLANES):
            sim = render_frame(plane, seed + 100 * index + offset)
            frames.append(BenchFrame(sim.image, sim.truth.mm_per_px, f"sim {plane} #{index}", plane))
    return frames


def bench_frames(real_count: int, sim_per_plane: int) -> list[BenchFrame]:
    return real_frames(real_count) + simulated_frames(sim_per_plane)


@dataclass(frozen=True)
class ScanFile:
    """A recorded scan that the offline line streams from disk, and what it is (for the results)."""

    path: Path
    description: str


# The scan the offline line streams from a file by default: one simulated sweep through every plane
# (`data.simulator.DEFAULT_SEGMENTS`, 140 frames), its speckle changing from frame to frame as on
# a real probe, so the decoder works as hard as on a recorded scan.
SCAN_SEED = 20261129
SCAN_FPS = 25.0


def write_scan_video(path: Path, segments: tuple[tuple[str, int], ...] | None = None, seed: int = SCAN_SEED) -> int:
    """Write a simulated sweep of 800x540 frames to `path` as mp4 (OpenCV's mp4v, as the engine
    writes its own videos); return its frame count. Like most recorded files, it carries no pixel
    spacing: the engine measures it in pixels (the sweep's depth changes between planes anyway)."""
    import cv2

    from edge_fetal.data.simulator import DEFAULT_SEGMENTS, render_sweep
    from edge_fetal.stream.writers import VideoSink

    # the engine's own mp4 writer, mp4v everywhere; raises OSError where OpenCV cannot write mp4
    sink = VideoSink(path, SCAN_FPS, encoder="cpu")
    try:
        for frame in render_sweep(seed, segments or DEFAULT_SEGMENTS):
            sink.write(cv2.cvtColor(frame.image, cv2.COLOR_GRAY2BGR))
    finally:
        sink.close()
    if sink.frames_written == 0:
        raise ValueError(f"the benchmark scan has no frames (segments {segments!r})")
    return sink.frames_written


def model_inputs(frames: list[BenchFrame], box: int | tuple[int, int]) -> list[np.ndarray]:
    """Each frame preprocessed as the pipeline does (letterbox, [0, 1]) into one input `box`
    (S or (H, W)): float32 `[1, 1, H, W]`, so that frames of any size batch together."""
    return [preprocess(f.image, letterbox(f.image.shape, box)) for f in frames]


def describe(frames: list[BenchFrame]) -> dict:
    folder, _ = real_frame_folder()
    planes = {plane: sum(1 for f in frames if f.origin.startswith("sim") and f.plane == plane) for plane in PLANES}
    return {"real_hc18": sum(1 for f in frames if f.origin.startswith("hc18")), "real_folder": str(folder),
            "simulated": planes, "sizes_hw": sorted({f.image.shape for f in frames})}
