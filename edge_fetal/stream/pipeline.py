"""The stream, wired: grab → preprocess → infer → measure → fuse → sinks.

Threads overlap so throughput follows the slowest stage, not the sum of them: the grabber reads
the source into a one-slot mailbox (grabber.py); the inference thread preprocesses and runs the
model (stages.py `infer`) and hands each result on through a one-item queue (offline, with a
backend that takes parallel calls, `inference_workers` such threads infer frames side by side and
hand them on in order); this thread measures and fuses (stages.py `finish`), in frame order; the
render thread draws and writes (sinks.py, fed by a bounded queue). So the model runs on frame N+1
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
import queue
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
from edge_fetal.stream.record import FrameRecord
from edge_fetal.stream.report import ReportWriter, StreamCounters, build_report
from edge_fetal.stream.sinks import REPORT_NAME, Sinks
from edge_fetal.stream.sources import FrameSource, open_source
from edge_fetal.stream.stages import FrameProcessor, Inferred
from edge_fetal.stream.stats import FpsMeter, LatencyStats

StreamReport = dict[str, Any]


class StreamError(EdgeFetalError):
    """Frames keep failing in a stage: the stream stops instead of skipping forever."""


def run_stream(source: FrameSource | str, backend: Backend, config: StreamConfig = StreamConfig(),
               out_dir: str | Path = "stream_out", progress: Callable[[str], None] | None = None,
               stop: threading.Event | None = None) -> StreamReport:
    """Run a source through the engine into `out_dir` (annotated.mp4, events.jsonl, report.json,
    best_*.png); return the final report. `progress` gets a one-line status about 4 times a second;
    setting `stop` (or Ctrl-C) ends the run cleanly."""
    source = source if isinstance(source, FrameSource) else open_source(source, config.source)
    source.open()  # fail here, before any thread starts
    started, stop = time.monotonic(), stop or threading.Event()
    latest = config.realtime or source.live
    latency, fps, counters = LatencyStats(), FpsMeter(), StreamCounters(calibration_note=source.reader.calibration_note)
    grabber = Grabber(source, latest=latest, pace=config.realtime and not source.live)
    try:
        sinks = Sinks(Path(out_dir), config.sinks, config.sinks.video_fps or source.fps or 25.0, latest, latency, started, stop.set)
    except BaseException:
        source.close()  # e.g. an output folder that cannot be written: release the camera
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
                            started=started, final=final, abandoned=inference.abandoned)

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
    from edge_fetal.stream.dicom_sr import SR_NAME, StructuredReportError, write_structured_report

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


class FailedFrame:
    """A frame the inference thread could not preprocess or infer: the consumer counts it."""

    def __init__(self, error: Exception) -> None:
        self.error = error


END_OF_FRAMES = object()  # the inference thread has no more frames to hand on


class InferenceThread:
    """Takes frames from the grabber, runs `process.infer` on each, and hands the results on in
    frame order through a one-item queue (back-pressure: it waits while the consumer is behind).
    With `finish` (one worker only), each result is finished here too and a `FrameRecord` is
    handed on instead.

    With `workers` > 1 (offline runs, a backend that takes parallel calls) that many threads take
    frames in turn and infer side by side; each hands its result on only after the frame before.
    `take()` gives an `Inferred` (a `FrameRecord` with `finish`), a `FailedFrame`, `END_OF_FRAMES`,
    or None on timeout. `stop()` ends the threads; frames taken but never handed on are counted in
    `abandoned`.
    """

    def __init__(self, grabber: Grabber, process: FrameProcessor, stop: threading.Event, workers: int = 1,
                 finish: Callable[[Inferred], FrameRecord] | None = None) -> None:
        if finish is not None and workers != 1:
            raise ValueError("frames can be finished on the inference thread only with one worker (frame order)")
        self.grabber, self.process, self.stop_requested, self.finish = grabber, process, stop, finish
        self.abandoned = 0
        self._handoff: queue.Queue = queue.Queue(maxsize=1)
        self._halt = threading.Event()
        self._taking = threading.Lock()  # one worker at a time takes a frame and its turn number
        self._turns = threading.Condition()  # guards the counters below
        self._next_turn = self._turn_to_hand = 0
        self._running = workers
        self._threads = [threading.Thread(target=self._run, name=f"edge-fetal-inference-{i}", daemon=True)
                         for i in range(workers)]

    def __enter__(self) -> "InferenceThread":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _halted(self) -> bool:
        return self._halt.is_set() or self.stop_requested.is_set()

    def _run(self) -> None:
        waiting_since = time.monotonic()
        while not self._halted():
            with self._taking:
                frame = self.grabber.take(timeout=0.1)
                turn = self._next_turn
                self._next_turn += frame is not None
            if frame is None:
                if self.grabber.finished:
                    break
                continue
            try:
                grab_wait_ms = (time.monotonic() - waiting_since) * 1e3
                item: Inferred | FrameRecord | FailedFrame = self.process.infer(frame, grab_wait_ms)
                if self.finish is not None:
                    item = self.finish(item)
            except Exception as error:  # counted by the consumer, like a failure in any stage
                item = FailedFrame(error)
            if not self._hand_on_in_turn(turn, item):
                break
            waiting_since = time.monotonic()
        with self._turns:
            self._running -= 1
            last = self._running == 0
        if last:  # every turn given out has been handed on (or abandoned)
            self._hand_on(END_OF_FRAMES)

    def _hand_on_in_turn(self, turn: int, item) -> bool:
        with self._turns:
            while self._turn_to_hand != turn and not self._halt.is_set():
                self._turns.wait(0.1)
        handed = not self._halt.is_set() and self._hand_on(item)
        with self._turns:
            self._turn_to_hand += 1
            self.abandoned += not handed
            self._turns.notify_all()
        return handed

    def _hand_on(self, item) -> bool:
        while not self._halt.is_set():
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, timeout: float) -> Inferred | FrameRecord | FailedFrame | object | None:
        try:
            return self._handoff.get(timeout=timeout)
        except queue.Empty:
            alive = any(thread.is_alive() for thread in self._threads)
            return None if alive or not self._handoff.empty() else END_OF_FRAMES

    def stop(self) -> None:
        """End the threads and count what they inferred but never handed over (idempotent)."""
        self._halt.set()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join()
        while True:
            try:
                item = self._handoff.get_nowait()
            except queue.Empty:
                return
            if item is not END_OF_FRAMES:
                self.abandoned += 1


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

