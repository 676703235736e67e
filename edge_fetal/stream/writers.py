"""Output files and the window: annotated mp4, events.jsonl, best-frame PNGs, an optional display.

Each writer is a small owning class with `close()`; none of them decides what to draw or when.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edge_fetal.stream import gstreamer
from edge_fetal.stream.config import VIDEO_ENCODERS
from edge_fetal.stream.fusion import FusionState
from edge_fetal.stream.stats import log


class VideoSink:
    """Annotated mp4, opened on the first frame, whose size (rounded up to even, as encoders need)
    every later frame is fitted to; finalised by `close()`.

    Encoder "auto": on a Jetson whose OpenCV has GStreamer, H.264 on its hardware encoder, which
    takes the recording's encoding (~5 ms a frame on a 2-core x86 CPU) off the CPU; anywhere else,
    or when that pipeline does not open, 'mp4v' on the CPU. "cpu": 'mp4v' always. `pipelines`
    (encoder element → GStreamer template with `{location}`) replaces the Jetson's, for a test.
    `encoder_used` names what wrote the file.

    A GStreamer pipeline can open and then refuse the first frame (its caps fail to negotiate at
    that size): OpenCV reports nothing, and the whole recording would be an empty file. So a
    pipeline is first tried on a probe clip of two copies of the first frame, beside the output,
    and used only if that clip is not empty.
    """

    def __init__(self, path: Path, fps: float, encoder: str = "auto", pipelines: dict[str, str] | None = None) -> None:
        if encoder not in VIDEO_ENCODERS:
            raise ValueError(f"video encoder must be one of {', '.join(VIDEO_ENCODERS)}, got {encoder!r}")
        self.path, self.fps, self.encoder = Path(path), float(fps), encoder
        self.pipelines = gstreamer.recording_pipelines(encoder) if pipelines is None else dict(pipelines)
        self.frames_written = 0
        self.encoder_used: str | None = None
        self._writer: cv2.VideoWriter | None = None
        self._size_wh: tuple[int, int] | None = None

    def write(self, image_bgr: np.ndarray) -> None:
        if self._size_wh is None:
            height, width = image_bgr.shape[:2]
            self._size_wh = (width + width % 2, height + height % 2)
        frame = _fit(image_bgr, self._size_wh)
        if self._writer is None:
            self._writer, self.encoder_used = self._open(frame)
        self._writer.write(frame)
        self.frames_written += 1

    def _open(self, first_frame: np.ndarray) -> tuple[cv2.VideoWriter, str]:
        for element, template in self.pipelines.items():
            writer = self._gstreamer_writer(template, first_frame) if self._encodes(template, first_frame) else None
            if writer is not None:
                log.info("%s: H.264 by %s (GStreamer)", self.path.name, element)
                return writer, element
            log.warning("%s: the GStreamer pipeline with %s did not open or encoded nothing; encoding mp4v "
                        "on the CPU", self.path.name, element)
        if self.encoder == "auto" and gstreamer.on_jetson() and not gstreamer.opencv_has_gstreamer():
            log.warning("%s: encoding mp4v on the CPU, as %s", self.path.name, gstreamer.missing_gstreamer_hint())
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size_wh)
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write an mp4v video at {self.path}")
        return writer, "mp4v"

    def _gstreamer_writer(self, template: str, first_frame: np.ndarray,
                          path: Path | None = None) -> cv2.VideoWriter | None:
        try:
            pipeline = template.format(location=gstreamer.quoted_location(path or self.path))
        except ValueError as error:  # a path GStreamer cannot be given: the recording stays on the CPU
            log.warning("%s", error)
            return None
        height, width = first_frame.shape[:2]
        writer = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, self.fps, (width, height), True)
        if writer.isOpened():
            return writer
        writer.release()
        return None

    def _encodes(self, template: str, first_frame: np.ndarray) -> bool:
        """Whether the pipeline turns two copies of the first frame into a file that is not empty."""
        probe = self.path.with_name(f".{self.path.stem}.probe{self.path.suffix}")
        try:
            writer = self._gstreamer_writer(template, first_frame, probe)
            if writer is None:
                return False
            writer.write(first_frame)
            writer.write(first_frame)
            writer.release()
            return probe.is_file() and probe.stat().st_size > 0
        finally:
            probe.unlink(missing_ok=True)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def _fit(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Pad a frame by at most one row/column to the video size, or resize if it changed size."""
    width, height = size_wh
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if 0 <= width - w <= 1 and 0 <= height - h <= 1:
        return cv2.copyMakeBorder(image, 0, height - h, 0, width - w, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class EventLog:
    """`events.jsonl`: one JSON object per processed frame, flushed line by line (tail -f works)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self.lines = 0

    def write(self, event: dict) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


BEST_FRAME_NAME = "best_{}.png"  # one per biometric: best_hc.png, best_ac.png...


class BestFrameSaver:
    """`best_<biometric>.png`: the overlay of the frame behind each fused value's best frame.

    `offer(state, overlay)` is called for every rendered frame: the overlay is kept in memory when
    the frame is a new best of its segment, and written when it becomes the best of the *reported*
    estimate (a later segment may replace an earlier one, or lose to it). `written[name]` =
    (segment, frame index, file name) of what is on disk.

    A PNG of an 800×540 overlay costs ~15 ms of CPU, and early in a segment the best frame changes
    every few frames. So files are written at most once per `min_interval_s`, each with the
    latest best frame; `flush()` writes what is still pending (`Sinks.close()` calls it before the
    final report). On disk, a best frame lags the estimate by at most that interval.
    """

    keep_segments = 3  # images of replaced segments kept in memory per biometric

    def __init__(self, out_dir: Path, min_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.out_dir = Path(out_dir)
        self.min_interval_s, self.clock = min_interval_s, clock
        self.written: dict[str, tuple[int, int, str]] = {}
        self._cache: dict[tuple[str, int], tuple[int, np.ndarray]] = {}
        self._pending: dict[str, tuple[tuple[int, int], np.ndarray]] = {}
        self._last_write = -math.inf

    def offer(self, state: FusionState, overlay_bgr: np.ndarray) -> None:
        for name in state.new_best:
            self._cache[(name, state.segment)] = (state.frame_index, overlay_bgr)
        for name, fused in state.fused.items():
            key = (fused.segment, fused.best.index)
            cached = self._cache.get((name, fused.segment))
            if self.written.get(name, (None, None))[:2] == key:
                self._pending.pop(name, None)  # the estimate went back to the frame already on disk
            elif cached is not None and cached[0] == fused.best.index:
                self._pending[name] = (key, cached[1])
        if self._pending and self.clock() - self._last_write >= self.min_interval_s:
            self.flush()
        keep = {state.segment} | {f.segment for f in state.fused.values()}
        for name in {k[0] for k in self._cache}:  # a replaced segment may win again: keep a few, not all
            older = sorted(k for k in self._cache if k[0] == name and k[1] not in keep)
            for stale in older[:-self.keep_segments]:
                del self._cache[stale]

    def flush(self) -> None:
        """Write every pending best frame now (atomically: a reader never sees half a PNG).

        HC, BPD and OFD share their best frame (one ellipse), so each image is encoded once and
        its bytes written to every file that shows it: a third of the PNG work on a head plane.
        """
        encoded: dict[int, bytes] = {}
        for name, (key, image) in self._pending.items():
            file_name = BEST_FRAME_NAME.format(name)
            if id(image) not in encoded:
                ok, png = cv2.imencode(".png", image)
                if not ok:
                    raise OSError(f"cannot encode {self.out_dir / file_name} as PNG")
                encoded[id(image)] = png.tobytes()
            temporary = self.out_dir / f".{file_name}.tmp.png"
            temporary.write_bytes(encoded[id(image)])
            os.replace(temporary, self.out_dir / file_name)
            self.written[name] = (*key, file_name)
        self._pending.clear()
        self._last_write = self.clock()

    def image_for(self, name: str, segment: int, index: int) -> str | None:
        """The saved file name of that best frame, or None if it is not (yet) on disk."""
        written = self.written.get(name)
        return written[2] if written is not None and written[:2] == (segment, index) else None


class Display:
    """An OpenCV window (`--display`). Without a GUI (headless OpenCV, no $DISPLAY) it switches
    itself off with one warning. `show()` returns False when the user pressed q or Esc."""

    def __init__(self, title: str = "edge-fetal") -> None:
        self.title = title
        self.enabled = True
        if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            self._disable("no $DISPLAY")

    def show(self, image_bgr: np.ndarray) -> bool:
        if not self.enabled:
            return True
        try:
            cv2.imshow(self.title, image_bgr)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as error:
            self._disable(str(error).strip().splitlines()[-1][:120])
            return True
        return key not in (ord("q"), 27)

    def _disable(self, why: str) -> None:
        self.enabled = False
        log.warning("display off (%s): the annotated video and report are still written", why)

    def close(self) -> None:
        if self.enabled:
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass
