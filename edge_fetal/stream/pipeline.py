"""The stream, wired: grab → preprocess → infer → measure → fuse → sinks.

Threads overlap so throughput follows the slowest stage, not the sum of them: the grabber reads the
source into a one-slot mailbox (grabber.py); the inference thread (inference.py) preprocesses and
runs the model (stages.py `infer`) and hands each result on, one waiting at a time (offline, with
a backend that takes parallel calls, `inference_workers` such threads infer frames side by side;
their results, at most one per worker waiting, are handed on in frame order); this thread
measures and fuses (stages.py `finish`), in frame order; the render thread draws and writes
(sinks.py, fed by a bounded queue). So the model runs on frame N+1
while frame N is measured. Live (one frame in the model at a time), the inference thread measures
and fuses its frame itself: no next frame is waiting to overlap with, and a hand-off would add a
thread wake-up to every frame's capture→result (PROFILE.md: p99 0.0-4.0 ms lower in 5 of 5 sets).
Files run offline (every frame, nothing dropped) unless `realtime`; live sources always drop
stale frames. A frame failing in any stage is counted and skipped; `max_consecutive_failures` in a
row stop the run. Frames already inferred when the run stops are counted as dropped. Ctrl-C stops
cleanly: the mp4 is finalised and report.json written with `"stopped_by": "interrupted"` (a
second Ctrl-C raises KeyboardInterrupt, after the same clean-up).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2

from edge_fetal.errors import EdgeFetalError
from edge_fetal.runtime.backend import Backend
from edge_fetal.stream.config import StreamConfig
from edge_fetal.stream.fusion import Fusion, FusionState
from edge_fetal.stream.grabber import Grabber
from edge_fetal.stream.inference import END_OF_FRAMES, FailedFrame, InferenceThread
from edge_fetal.stream.record import FrameRecord
from edge_fetal.stream.report import ReportWriter, StreamCounters, build_report
from edge_fetal.stream.sinks import REPORT_NAME, SR_NAME, Sinks, clear_output_folder
from edge_fetal.stream.sources import FrameSource, open_source
from edge_fetal.stream.stages import FrameProcessor, Inferred
from edge_fetal.stream.stats import FpsMeter, LatencyStats

StreamReport = dict[str, Any]


class StreamError(EdgeFetalError):
    """Frames keep failing in a stage: the stream stops instead of skipping forever."""


def run_stream(source: FrameSource | str, backend: Backend, config: StreamConfig = StreamConfig(),
               out_dir: str | Path = "stream_out", progress: Callable[[str], None] | None = None,
               stop: threading.Event | None = None, replace_previous: bool = False) -> StreamReport:
    """Run a source through the engine into `out_dir` (annotated.mp4, events.jsonl, report.json,
    best_*.png); return the final report. `progress` gets a one-line status about 4 times a second;
    setting `stop` (or Ctrl-C) ends the run cleanly. An earlier run's outputs in `out_dir` are
    refused (`OutputFolderError`), or deleted once the source has opened if `replace_previous`,
    so that one folder never mixes two scans."""
    source = source if isinstance(source, FrameSource) else open_source(source, config.source)
    source.open()  # fail here, before any thread starts
    started, cpu_started, stop = time.monotonic(), time.process_time(), stop or threading.Event()
    latest = config.realtime or source.live
    latency, fps, counters = LatencyStats(), FpsMeter(), StreamCounters(calibration_note=source.reader.calibration_note)
    grabber = Grabber(source, latest=latest, pace=config.realtime and not source.live)
    try:
        clear_output_folder(Path(out_dir), replace_previous)
        sinks = Sinks(Path(out_dir), config.sinks, config.sinks.video_fps or source.fps or 25.0, latest, latency, started, stop.set)
    except BaseException:
        source.close()  # e.g. an output folder that cannot be written or is taken: release the camera
        raise
    process = FrameProcessor(backend, Fusion(config.fusion), config.pixel_spacing, started)
    reports = ReportWriter(Path(out_dir) / REPORT_NAME, config.sinks.report_interval_s)
    last: dict[str, Any] = {"state": None, "spacing": config.pixel_spacing, "status_at": -math.inf}

    workers = config.inference_workers if backend.parallel_calls else 1

    def finish(item: Inferred) -> FrameRecord:
        fps.tick(time.monotonic())
        return process.finish(item, fps.fps)

    finish_here = latest and workers == 1
    inference = InferenceThread(grabber, process, stop, workers, finish=finish if finish_here else None)

    def report(final: bool) -> StreamReport:
        spacing = last["spacing"]
        return build_report(state=last["state"], counters=counters, source=source, grabber=grabber, sinks=sinks,
                            latency=latency, calibration=spacing.source if spacing else "none: lengths in pixels only",
                            started=started, cpu_started=cpu_started, final=final, abandoned=inference.abandoned)

    try:
        with _StopOnSigint(stop) as sigint, _opencv_single_threaded(workers > 1), sinks, grabber, inference:
            failures_in_row = 0
            while not stop.is_set() and counters.processed < (config.max_frames or math.inf):
                item = inference.take(timeout=0.1)
                if item is None:
                    continue
                if item is END_OF_FRAMES:
                    break
                now = time.monotonic()
                try:
                    if isinstance(item, FailedFrame):
                        raise item.error
                    record = item if isinstance(item, FrameRecord) else finish(item)
                except Exception as error:  # error policy: count, skip, carry on (up to a limit)
                    counters.failed.count(f"{type(error).__name__}", str(error))
                    failures_in_row += 1
                    if failures_in_row >= config.max_consecutive_failures:
                        raise StreamError(f"{failures_in_row} frames in a row failed in processing, the last with "
                                          f"{type(error).__name__}: {error}") from error
                    continue
                failures_in_row = 0
                latency.add_all(record.latency_ms)
                sinks.submit(record)
                counters.processed += 1
                last["state"], last["spacing"] = record.state, record.spacing or last["spacing"]
                if progress is not None and now - last["status_at"] >= 0.25:
                    progress(status_line(counters.processed, record.fps, record.state))
                    last["status_at"] = now
                if reports.due(now):
                    reports.write(report(False), now)
            inference.stop()
            grabber.raise_if_failed()
            counters.stopped_by = ("interrupted" if sigint.interrupted else "stop requested" if stop.is_set()
                                   else "max frames" if counters.processed >= (config.max_frames or math.inf)
                                   else "end of source")
    except KeyboardInterrupt:
        counters.stopped_by = "interrupted"
        raise
    except BaseException as error:
        counters.stopped_by = f"error: {type(error).__name__}: {error}"
        raise
    finally:
        final = report(True)
        if config.sinks.dicom_sr:
            final["dicom_sr"] = _structured_report(final, Path(out_dir), source.reader.identity)
        reports.write(final, time.monotonic())
        if progress is not None and last["state"] is not None:
            progress(status_line(counters.processed, fps.fps, last["state"]))
    return final


def _structured_report(report: StreamReport, out_dir: Path, identity) -> dict:
    """Write the DICOM SR of the final report; a failure is recorded in report.json, not raised,
    so that it cannot hide the run's own outcome or cost the files already written."""
    from edge_fetal.stream.dicom_sr import StructuredReportError, write_structured_report

    try:
        return write_structured_report(report, out_dir / SR_NAME, identity)
    except StructuredReportError as error:
        return {"file": None, "error": str(error)}


def status_line(frames: int, fps: float, state: FusionState) -> str:
    """`frames 120 | 24.3 fps | head 0.98 (plane head) | HC 265.2±1.1 mm L | AC - | FL -` (L: locked)."""
    parts = [f"frames {frames}", f"{fps:.1f} fps", f"{state.frame_plane} {state.frame_probability:.2f} "
             f"(plane {state.plane or '-'})"]
    for name in ("hc", "ac", "fl"):
        fused = state.fused.get(name)
        parts.append(f"{name.upper()} -" if fused is None else
                     f"{name.upper()} {fused.value:.1f}±{fused.spread:.1f} {fused.unit}{' L' if fused.locked else ''}")
    if state.ga is not None:
        parts.append(f"GA {state.ga.value:.1f} wk")
    return " | ".join(parts)


@contextmanager
def _opencv_single_threaded(wanted: bool) -> Iterator[None]:
    """OpenCV's own thread pool off while several frames are in the model at once: those workers
    already hold every core, and OpenCV's threads (resize, warp, colour) only contend with them.
    Offline pipeline, 4 interleaved rounds each: 57.5-61.3 -> 61.2-63.9 frames/s (PROFILE.md)."""
    if not wanted:
        yield
        return
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


class _StopOnSigint:
    """While active (main thread only), the first Ctrl-C sets `stop`; a second raises KeyboardInterrupt."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop, self.interrupted, self._previous = stop, False, None

    def _handle(self, _signum, _frame) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self.stop.set()

    def __enter__(self) -> "_StopOnSigint":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

