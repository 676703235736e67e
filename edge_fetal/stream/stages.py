"""The per-frame stages, timed, in two halves that run on two threads:
`infer` (preprocess → model) and `finish` (plane → measure → fuse).

The same steps as `runtime.analyse.analyse_frame` (so the stream measures exactly like `eval`),
split so the model can run on the next frame while this one is measured and fused, and so each
stage's latency is recorded. The letterbox mapping is cached per frame size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge_fetal.calibration import Letterbox, PixelSpacing
from edge_fetal.runtime.analyse import decide_plane, measure_labels, preprocess
from edge_fetal.runtime.backend import Backend, ModelOutputs
from edge_fetal.stream.fusion import Fusion
from edge_fetal.stream.record import FrameRecord
from edge_fetal.stream.sources import Frame


@dataclass(frozen=True)
class Inferred:
    """A frame after the model: its outputs, the mapping back to source pixels, the stage times so far."""

    frame: Frame
    outputs: ModelOutputs
    mapping: Letterbox
    latency_ms: dict[str, float]


class FrameProcessor:
    """One frame in, one `FrameRecord` out (exceptions propagate: the pipeline counts and skips).

    `infer` and `finish` may run on different threads, `infer` for frame N+1 beside `finish` for
    frame N. `finish` is only ever called from one thread, in frame order; `infer` from one, or
    from several at once when the backend takes parallel calls. `spacing`, when given, overrides the
    frame's own (e.g. `--pixel-spacing`). Fusion times are the frame's time in the source when
    known, else seconds since `start_time` (monotonic).
    """

    def __init__(self, backend: Backend, fusion: Fusion, spacing: PixelSpacing | None, start_time: float) -> None:
        self.backend, self.fusion, self.spacing, self.start_time = backend, fusion, spacing, start_time
        self._mapping: Letterbox | None = None

    def infer(self, frame: Frame, grab_wait_ms: float) -> Inferred:
        t0 = time.monotonic()
        mapping = self._mapping  # one read: offline, several inference workers share the cache
        if mapping is None or mapping.src_hw != frame.image.shape:
            mapping = self._mapping = self.backend.letterbox_for(frame.image.shape)
        batch = preprocess(frame.image, mapping)
        t1 = time.monotonic()
        outputs = self.backend.infer(batch)
        t2 = time.monotonic()
        return Inferred(frame, outputs, mapping,
                        {"grab_wait": grab_wait_ms, "preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3})

    def finish(self, inferred: Inferred, fps: float) -> FrameRecord:
        t2 = time.monotonic()
        frame, outputs = inferred.frame, inferred.outputs
        plane, probabilities = decide_plane(outputs.plane_logits[0])
        spacing = self.spacing or frame.spacing
        measurement = measure_labels(outputs.seg_labels[0], plane, inferred.mapping, spacing.mm_per_px if spacing else None)
        t3 = time.monotonic()
        time_s = frame.source_time if frame.source_time is not None else frame.capture_time - self.start_time
        state = self.fusion.update(frame.index, time_s, plane, probabilities[plane], measurement)
        t4 = time.monotonic()
        latency_ms = {**inferred.latency_ms, "measure": (t3 - t2) * 1e3, "fuse": (t4 - t3) * 1e3,
                      "end_to_end": (t4 - frame.capture_time) * 1e3}
        return FrameRecord(frame, probabilities, measurement, state, spacing, latency_ms, t4, fps)
