"""The naive baseline: the end-to-end loop a first prototype would be, written plainly.

One thread, one frame at a time: letterbox → torch eager (plain NCHW, not channels_last) → the 4
float class maps copied back (no argmax in the graph) → each class map upsampled to the source
size and argmax there → biometry on that full-resolution mask → cv2 drawing and VideoWriter in
the same loop. It measures correctly (the tests check it against the pipeline); it is only slow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edge_fetal.biometry import MEASURE_BY_STRUCTURE, Ellipse, FemurAxis, Measurement
from edge_fetal.calibration import letterbox
from edge_fetal.runtime.backend import PLANES, STRUCTURE_LABEL


@dataclass
class NaiveRun:
    """Per frame: capture → result (measurement ready) and capture → frame written, in ms; the results."""

    result_ms: list[float] = field(default_factory=list)
    loop_ms: list[float] = field(default_factory=list)
    planes: list[str] = field(default_factory=list)
    measurements: list[Measurement | None] = field(default_factory=list)
    wall_s: float = 0.0

    def add(self, other: "NaiveRun") -> None:
        """Pool another run's timings into this one (the benchmark's rounds)."""
        self.result_ms += other.result_ms
        self.loop_ms += other.loop_ms
        self.wall_s += other.wall_s


def run_naive(images: Sequence[np.ndarray], mm_per_px: Sequence[float | None], model, input_size: int,
              video_path: str | Path, fps: float = 25.0) -> NaiveRun:
    """Run `model` (a MultiTaskUNet on the CPU) over grey uint8 `images`; write an annotated mp4."""
    import torch

    model = model.eval()
    run = NaiveRun()
    writer, size_wh = None, None
    started = time.perf_counter()
    for image, spacing in zip(images, mm_per_px):
        t0 = time.perf_counter()
        height, width = image.shape

        # preprocess: letterbox into the square model input, scale to [0, 1]
        box = letterbox(image.shape, input_size)
        x = torch.from_numpy(box.to_model(image).astype(np.float32) / 255.0)[None, None]

        # model: eager forward, float logits back to numpy
        with torch.no_grad():
            seg_logits, plane_logits = model(x)
        seg = seg_logits[0].numpy()
        logits = plane_logits[0].numpy().astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        plane = PLANES[int(np.argmax(probabilities))]

        # full-resolution labels: crop the letterbox content, upsample every class map, argmax
        (ch, cw), top, left = box.content_hw, box.pad_y, box.pad_x
        full = np.stack([cv2.resize(np.ascontiguousarray(seg[k, top:top + ch, left:left + cw]), (width, height),
                                    interpolation=cv2.INTER_LINEAR) for k in range(seg.shape[0])])
        labels = full.argmax(axis=0)

        measurement = None
        if plane in STRUCTURE_LABEL:
            measurement = MEASURE_BY_STRUCTURE[plane](labels == STRUCTURE_LABEL[plane], spacing)
        t1 = time.perf_counter()

        # draw and write, in the same loop
        canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        text = f"{plane} {probabilities.max():.2f}"
        if measurement is not None and measurement.geometry is not None:
            geometry = measurement.geometry
            if isinstance(geometry, Ellipse):
                cv2.ellipse(canvas, ((geometry.center_x_px, geometry.center_y_px),
                                     (geometry.major_axis_px, geometry.minor_axis_px), geometry.angle_deg),
                            (80, 220, 80), 2, cv2.LINE_AA)
            elif isinstance(geometry, FemurAxis):
                a, b = np.round(geometry.end_a_xy).astype(int), np.round(geometry.end_b_xy).astype(int)
                cv2.line(canvas, tuple(a.tolist()), tuple(b.tolist()), (80, 220, 80), 2, cv2.LINE_AA)
            for name, value in (measurement.values_mm or measurement.values_px).items():
                text += f"  {name.upper()} {value:.1f}{' mm' if measurement.values_mm else ' px'}"
        cv2.putText(canvas, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (235, 235, 235), 1, cv2.LINE_AA)
        if writer is None:  # opened on the first frame; later frames of another size are resized to it
            size_wh = (width, height)
            writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
        writer.write(canvas if (width, height) == size_wh else cv2.resize(canvas, size_wh))
        t2 = time.perf_counter()

        run.result_ms.append((t1 - t0) * 1e3)
        run.loop_ms.append((t2 - t0) * 1e3)
        run.planes.append(plane)
        run.measurements.append(measurement)
    if writer is not None:
        writer.release()
    run.wall_s = time.perf_counter() - started
    return run
