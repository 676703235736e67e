"""`FrameRecord`: everything the sinks need about one processed frame, and its `events.jsonl` line.

The overlay, the event log and the report consume this one record (measurement emits geometry and
values; only the overlay picks colours and fonts).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from edge_fetal.biometry import Measurement
from edge_fetal.calibration import PixelSpacing
from edge_fetal.stream.fusion import BIOMETRICS_BY_PLANE, FusedBiometry, FusionState
from edge_fetal.stream.sources import Frame

BIOMETRIC_ORDER = ("hc", "bpd", "ofd", "ac", "fl")


@dataclass
class FrameRecord:
    """One processed frame. `latency_ms` holds the stages run so far (the sink adds "sink")."""

    frame: Frame
    plane_probabilities: dict[str, float]
    measurement: Measurement | None
    state: FusionState
    spacing: PixelSpacing | None
    latency_ms: dict[str, float]
    result_time: float  # time.monotonic() when fusion finished
    fps: float
    wall_time: float = field(default_factory=time.time)

    @property
    def frame_in_plane(self) -> bool:
        """The frame is of the stable plane: its geometry may be drawn (per-frame values only if `state.shown`)."""
        return self.state.plane is not None and self.state.frame_plane == self.state.plane


def fused_json(fused: FusedBiometry) -> dict:
    """A fused biometric as plain JSON (the best frame's image path is added by the report)."""
    return {
        "value": rounded(fused.value), "spread_sd": rounded(fused.spread), "iqr": rounded(fused.iqr), "unit": fused.unit,
        "frames_used": fused.frames_used, "frames_rejected": fused.frames_rejected, "locked": fused.locked,
        "plane": fused.plane, "segment": fused.segment,
        "best_frame": {"index": fused.best.index, "time_s": rounded(fused.best.time_s), "score": rounded(fused.best.score)},
    }


def event_json(record: FrameRecord, start_time: float) -> dict:
    """The `events.jsonl` line of one frame: time, index, plane + probability, each measurement in
    mm (px without spacing) with its quality or the reason it is withheld, fused values, latencies."""
    state, measurement = record.state, record.measurement
    quality = measurement.quality.score if measurement is not None and measurement.quality else None
    measurements = {}
    if state.shown:
        for name, value in state.shown.items():
            measurements[name] = {f"value_{state.unit}": rounded(value), "quality": rounded(quality)}
    elif measurement is not None:
        for name in BIOMETRICS_BY_PLANE.get(measurement.structure, ()):
            measurements[name] = {"withheld": state.note or measurement.withheld_reason, "quality": rounded(quality)}
    return {
        "time_s": rounded(record.frame.capture_time - start_time), "wall_time": round(record.wall_time, 3),
        "frame": record.frame.index, "source_time_s": rounded(record.frame.source_time),
        "plane": state.frame_plane, "plane_probability": rounded(state.frame_probability),
        "stable_plane": state.plane, "measurements": measurements,
        "fused": {name: {"value": rounded(f.value), "spread_sd": rounded(f.spread), "unit": f.unit, "locked": f.locked}
                  for name, f in sorted(state.fused.items(), key=lambda kv: BIOMETRIC_ORDER.index(kv[0]))},
        "ga_weeks": rounded(state.ga.value) if state.ga else None,
        "efw_g": rounded(state.efw.value, 1) if state.efw else None,
        "latency_ms": {stage: rounded(ms) for stage, ms in record.latency_ms.items()},
    }


def rounded(value, digits: int = 3):
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
