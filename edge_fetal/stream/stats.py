"""Counters a stream keeps about itself: problems by kind, stage latencies, frames in and out.

Written by one thread each and read by others for the status line and the report; plain ints and
bounded deques, so a reader sees a value that is at most one frame old.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque

import numpy as np

log = logging.getLogger("edge_fetal.stream")

# "sink" is the render thread's whole time per frame; "draw" (the overlay) and "video_write" (mp4
# encoding) are its two parts that cost CPU time.
STAGES = ("grab_wait", "preprocess", "infer", "measure", "fuse", "sink", "draw", "video_write", "end_to_end")


class ProblemCounter:
    """Counts problems by kind and logs the first of each kind only (a bad camera may fail 30 times a second)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.counts: Counter[str] = Counter()
        self.first_detail: dict[str, str] = {}
        self._lock = threading.Lock()

    def count(self, kind: str, detail: str = "") -> None:
        with self._lock:
            first = kind not in self.counts
            self.counts[kind] += 1
            if first:
                self.first_detail[kind] = detail
        if first:
            log.warning("%s: %s%s (counted; further ones are not logged)", self.what, kind, f": {detail}" if detail else "")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, dict]:
        with self._lock:
            return {kind: {"count": n, "first": self.first_detail.get(kind, "")} for kind, n in self.counts.items()}


class LatencyStats:
    """Per-stage latencies in ms over the most recent `window` frames; percentiles on demand."""

    def __init__(self, window: int = 20_000) -> None:
        self._values: dict[str, deque[float]] = {stage: deque(maxlen=window) for stage in STAGES}
        self._lock = threading.Lock()

    def add(self, stage: str, milliseconds: float) -> None:
        with self._lock:
            self._values[stage].append(float(milliseconds))

    def add_all(self, stage_ms: dict[str, float]) -> None:
        with self._lock:
            for stage, value in stage_ms.items():
                self._values[stage].append(float(value))

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """{stage: {count, mean, p50, p95, p99, max}} in ms; None figures for a stage with no samples."""
        with self._lock:
            snapshot = {stage: np.array(values, dtype=np.float64) for stage, values in self._values.items()}
        out = {}
        for stage, values in snapshot.items():
            if values.size == 0:
                out[stage] = {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
                continue
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            out[stage] = {"count": int(values.size), "mean_ms": round(float(values.mean()), 3), "p50_ms": round(float(p50), 3),
                          "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3), "max_ms": round(float(values.max()), 3)}
        return out


class FpsMeter:
    """Frames per second over the last `window_s` seconds of `tick(now)` calls (time.monotonic)."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    @property
    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0
