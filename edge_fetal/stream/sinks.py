"""Everything after fusion: the event line now, the rendering later, on its own thread.

`Sinks.submit(record)` (inference thread) writes the frame's `events.jsonl` line at once and hands
the record to the render thread through a bounded queue (`SinkConfig.queue_size`, 2-4):
overlay → window → mp4 → best-frame PNGs. When the queue is full, offline runs wait (nothing is
lost), realtime runs skip rendering that frame and count it (`renders_dropped`), except a frame
that is a new best frame, which is always rendered. `close()` drains the queue, writes the best
frames still pending and finalises the mp4; it is safe to call twice. The render thread's time
per frame is the "sink" stage latency; "draw" (the overlay) and "video_write" (the mp4 encoder)
are its parts.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Callable

from edge_fetal.errors import EdgeFetalError
from edge_fetal.stream.config import SinkConfig
from edge_fetal.stream.overlay import draw_overlay
from edge_fetal.stream.record import FrameRecord, event_json
from edge_fetal.stream.stats import LatencyStats, ProblemCounter
from edge_fetal.stream.writers import BEST_FRAME_NAME, BestFrameSaver, Display, EventLog, VideoSink

VIDEO_NAME, EVENTS_NAME, REPORT_NAME = "annotated.mp4", "events.jsonl", "report.json"
SR_NAME = "report_sr.dcm"  # the DICOM structured report, with `--dicom-sr`
BEST_FRAMES = BEST_FRAME_NAME.format("*")  # the pattern of the names BestFrameSaver writes


class OutputFolderError(EdgeFetalError):
    """The output folder holds an earlier run's outputs, which this run would overwrite or mix with."""


def new_output_folder(parent: Path, start: time.struct_time | None = None) -> Path:
    """A folder for one run under `parent`, named by its UTC start time, never one that exists
    (two runs in the same second get `-2`, `-3`...)."""
    stem = time.strftime("%Y%m%dT%H%M%SZ", start or time.gmtime())
    folder, count = Path(parent) / stem, 1
    while folder.exists():
        count += 1
        folder = Path(parent) / f"{stem}-{count}"
    return folder


def previous_run_files(out_dir: Path) -> list[Path]:
    """What an earlier run left in `out_dir`. A new run would overwrite some of it and leave the
    rest (a best frame of a biometric it does not measure) beside its own report, as if one scan's."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    named = [out_dir / name for name in (VIDEO_NAME, EVENTS_NAME, REPORT_NAME, SR_NAME)]
    return [path for path in named if path.exists()] + sorted(out_dir.glob(BEST_FRAMES))


def check_output_folder(out_dir: Path, replace: bool) -> list[Path]:
    """The earlier run's files in `out_dir`; refused (OutputFolderError) unless `replace`."""
    found = previous_run_files(out_dir)
    if found and not replace:
        raise OutputFolderError(f"{out_dir} already holds the outputs of an earlier run ("
                                f"{', '.join(path.name for path in found)}): choose another --out, "
                                "or add --overwrite to replace them")
    return found


def clear_output_folder(out_dir: Path, replace: bool) -> None:
    """Ready `out_dir` for a new run: refused as `check_output_folder` says; with `replace`, the
    earlier run's files are deleted, and nothing else in the folder is touched."""
    for path in check_output_folder(out_dir, replace):
        path.unlink()


class Sinks:
    """Event log, render thread (overlay, window, mp4, best frames). Use as a context manager."""

    def __init__(self, out_dir: Path, config: SinkConfig, fps: float, drop_when_busy: bool,
                 latency: LatencyStats, start_time: float, on_quit: Callable[[], None] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.config, self.drop_when_busy, self.latency, self.start_time = config, drop_when_busy, latency, start_time
        self.on_quit = on_quit
        self.events = EventLog(self.out_dir / EVENTS_NAME)
        self.video = VideoSink(self.out_dir / VIDEO_NAME, fps, config.video_encoder) if config.video else None
        self.best = BestFrameSaver(self.out_dir) if config.best_frames else None
        self.display = Display() if config.display else None
        self.problems = ProblemCounter("render")
        self.renders_dropped = 0
        self.rendered = 0
        self._queue: queue.Queue[FrameRecord | None] = queue.Queue(maxsize=config.queue_size)
        self._thread = threading.Thread(target=self._render_loop, name="edge-fetal-render", daemon=True)
        self._closed = False

    def __enter__(self) -> "Sinks":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @property
    def renders(self) -> bool:
        return self.video is not None or self.best is not None or self.display is not None

    def submit(self, record: FrameRecord) -> None:
        """Log the frame now; queue it for rendering (see the module docstring for when it waits)."""
        self.events.write(event_json(record, self.start_time))
        if not self.renders:
            return
        if self.drop_when_busy and not record.state.new_best:
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                self.renders_dropped += 1
            return
        self._queue.put(record)

    def _render_loop(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            started = time.monotonic()
            try:
                image = draw_overlay(record)
                self.latency.add("draw", (time.monotonic() - started) * 1000.0)
                if self.display is not None and not self.display.show(image) and self.on_quit is not None:
                    self.on_quit()
                if self.video is not None:
                    writing = time.monotonic()
                    self.video.write(image)
                    self.latency.add("video_write", (time.monotonic() - writing) * 1000.0)
                if self.best is not None:
                    self.best.offer(record.state, image)
                self.rendered += 1
            except Exception as error:  # one bad frame must not end the recording
                self.problems.count(f"render failed ({type(error).__name__})", str(error))
            self.latency.add("sink", (time.monotonic() - started) * 1000.0)

    def close(self) -> None:
        """Render what is queued, finalise the mp4, close the files."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self.best is not None:
            try:
                self.best.flush()
            except Exception as error:  # the mp4 and the event log must still be closed properly
                self.problems.count(f"render failed ({type(error).__name__})", str(error))
        if self.video is not None:
            self.video.close()
        if self.display is not None:
            self.display.close()
        self.events.close()
