"""The per-frame stages, timed: preprocess → infer → measure → fuse.

The same steps as `runtime.analyse.analyse_frame` (so the stream measures exactly like `eval`),
split so each one's latency is recorded. The letterbox mapping is cached per frame size.
"""

from __future__ import annotations

import time

from edge_fetal.calibration import Letterbox, PixelSpacing, letterbox
from edge_fetal.runtime.analyse import decide_plane, measure_labels, preprocess
from edge_fetal.runtime.backend import Backend
from edge_fetal.stream.fusion import Fusion
from edge_fetal.stream.record import FrameRecord
from edge_fetal.stream.sources import Frame


class FrameProcessor:
    """One frame in, one `FrameRecord` out (exceptions propagate: the pipeline counts and skips).

    `spacing`, when given, overrides the frame's own (e.g. `--pixel-spacing`). Fusion times are
    the frame's time in the source when known, else seconds since `start_time` (monotonic).
    """

    def __init__(self, backend: Backend, fusion: Fusion, spacing: PixelSpacing | None, start_time: float) -> None:
        self.backend, self.fusion, self.spacing, self.start_time = backend, fusion, spacing, start_time
        self._mapping: Letterbox | None = None

    def __call__(self, frame: Frame, grab_wait_ms: float, fps: float) -> FrameRecord:
        t0 = time.monotonic()
        if self._mapping is None or self._mapping.src_hw != frame.image.shape:
            self._mapping = letterbox(frame.image.shape, self.backend.input_size)
        batch = preprocess(frame.image, self._mapping)
        t1 = time.monotonic()
        outputs = self.backend.infer(batch)
        t2 = time.monotonic()
        plane, probabilities = decide_plane(outputs.plane_logits[0])
        spacing = self.spacing or frame.spacing
        measurement = measure_labels(outputs.seg_labels[0], plane, self._mapping, spacing.mm_per_px if spacing else None)
        t3 = time.monotonic()
        time_s = frame.source_time if frame.source_time is not None else frame.capture_time - self.start_time
        state = self.fusion.update(frame.index, time_s, plane, probabilities[plane], measurement)
        t4 = time.monotonic()
        latency_ms = {"grab_wait": grab_wait_ms, "preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3,
                      "measure": (t3 - t2) * 1e3, "fuse": (t4 - t3) * 1e3, "end_to_end": (t4 - frame.capture_time) * 1e3}
        return FrameRecord(frame, probabilities, measurement, state, spacing, latency_ms, t4, fps)
