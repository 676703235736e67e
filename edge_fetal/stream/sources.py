"""Frames from anywhere, as 8-bit grey `Frame`s: `open_source("0" | "scan.mp4" | "rtsp://…" | "… ! appsink"
| "cine.dcm" | "frames/" | "sim")`.

A `Reader` (readers.py) knows one kind of source and returns raw arrays; `FrameSource` turns them
into `Frame`s and owns the policy that is the same for all of them:
- conversion to grey uint8 happens here, once (`to_grey_u8`: BGR, BGRA, RGB, YBR, packed YUYV, 16-bit);
- the ROI crop (`--roi x,y,w,h`, or `auto`: the DICOM ultrasound region, else the image fan found
  on the first good frame; then fixed);
- a read that raises or returns garbage (None, empty, an unsupported dtype or shape) is counted,
  logged once per kind and skipped; a file source stops with `SourceError` after
  `max_consecutive_failures` in a row, a live one reconnects with exponential back-off (capped);
- the end of a file ends the iteration cleanly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from edge_fetal.calibration import PixelSpacing
from edge_fetal.stream.config import SourceConfig
from edge_fetal.stream.gstreamer import pipeline_reads_file, warn_if_rtsp_buffers, warn_if_video_range_grey
from edge_fetal.stream.readers import (
    IMAGE_SUFFIXES, DicomCineReader, EndOfStream, ImageFilesReader, Reader, SimReader, SourceError,
    VideoCaptureReader, is_dicom, redact_url,
)
from edge_fetal.stream.roi import Roi, RoiError, detect_fan
from edge_fetal.stream.stats import ProblemCounter, log


@dataclass(frozen=True)
class Frame:
    """One frame as the rest of the stream sees it.

    index: position in the source (a skipped bad read leaves a gap); image: grey uint8 HxW, already
    cropped; capture_time: time.monotonic() when it was read; source_time: seconds into a file or
    cine (None for live sources); spacing: the source's own calibration, or None; truth: the
    simulator's per-frame truth (`--source sim` only).
    """

    index: int
    image: np.ndarray
    capture_time: float
    source_time: float | None
    spacing: PixelSpacing | None
    truth: Any = None


# Video-range luma (black 16, white 235, ITU-R BT.601 / BT.709) to full-range grey, as OpenCV's
# own YUV -> BGR -> grey conversion reads it: the grey the model was trained on.
VIDEO_RANGE_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def to_grey_u8(image: np.ndarray, colour: str = "bgr", bits_stored: int | None = None) -> np.ndarray:
    """Any frame a source may produce → contiguous grey uint8 HxW.

    2-D: grey. HxWx1: grey. HxWx2: packed YUYV (its Y samples, taken from video range to full range:
    the grey OpenCV makes of the same picture through BGR). HxWx3: BGR
    (OpenCV), or RGB / YBR with `colour="rgb"` / `"ybr"` (YBR: the Y channel). HxWx4: BGRA / RGBA.
    uint16 is scaled by its `bits_stored` (default 16) to 8 bits. Anything else raises ValueError.
    """
    array = np.asarray(image)
    if array.size == 0:
        raise ValueError(f"empty frame (shape {array.shape})")
    if array.dtype == np.uint16:
        bits = 16 if bits_stored is None else int(bits_stored)
        if not 8 <= bits <= 16:
            raise ValueError(f"bits stored must lie in 8..16 for a 16-bit frame, got {bits}")
        array = (np.minimum(array, (1 << bits) - 1) >> (bits - 8)).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ValueError(f"unsupported frame dtype {array.dtype} (expected uint8 or uint16)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[2] == 2:
        array = cv2.LUT(np.ascontiguousarray(array[..., 0]), VIDEO_RANGE_TO_FULL)
    elif array.ndim == 3 and array.shape[2] == 3:
        array = array[..., 0] if colour == "ybr" else cv2.cvtColor(
            array, cv2.COLOR_RGB2GRAY if colour == "rgb" else cv2.COLOR_BGR2GRAY)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2GRAY if colour == "rgb" else cv2.COLOR_BGRA2GRAY)
    elif array.ndim != 2:
        raise ValueError(f"unsupported frame shape {array.shape} (expected HxW or HxWx1..4)")
    if min(array.shape) < 8:
        raise ValueError(f"frame too small to measure ({array.shape[1]}x{array.shape[0]} px)")
    return np.ascontiguousarray(array)


class FrameSource:
    """A `Reader` with the shared policy above. Iterate `frames(stop)` once; `open()` may be called
    first to fail fast (and to learn `fps`) before any thread starts."""

    def __init__(self, reader: Reader, config: SourceConfig = SourceConfig()) -> None:
        self.reader = reader
        self.config = config
        self.problems = ProblemCounter(f"source {reader.description}")
        self.frames_read = 0
        self.reconnects = 0
        self._backoff_s = config.reconnect_initial_s
        self.roi: Roi | None = config.roi if isinstance(config.roi, Roi) else None
        self._opened = False

    @property
    def live(self) -> bool:
        return self.reader.live

    @property
    def fps(self) -> float | None:
        """Frames per second for pacing and the output video: `--fps`, else the source's own."""
        return self.config.fps or self.reader.fps

    @property
    def description(self) -> str:
        return self.reader.description

    def open(self) -> None:
        if not self._opened:
            self.reader.open()
            self._opened = True

    def close(self) -> None:
        if self._opened:
            self.reader.close()
            self._opened = False

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Good frames until the end of the source or until `stop` is set."""
        stop = stop or threading.Event()
        self.open()
        position, failures_in_row = 0, 0
        try:
            while not stop.is_set():
                try:
                    raw = self.reader.read()
                except EndOfStream:
                    return
                except Exception as error:  # a reader may raise anything mid-stream; counted, never fatal
                    self.problems.count(f"read raised {type(error).__name__}", str(error))
                    position += 1
                    if self.reader.live:
                        self._reconnect(stop)
                    else:
                        failures_in_row = self._give_up_after(failures_in_row + 1)
                    continue
                capture_time = time.monotonic()
                position += 1
                try:
                    image = self._prepare(raw.image)
                except (ValueError, TypeError, RoiError) as problem:
                    if isinstance(problem, RoiError) and self.frames_read == 0:
                        raise
                    self.problems.count(_garbage_kind(raw.image, problem), str(problem))
                    if not self.reader.live:
                        failures_in_row = self._give_up_after(failures_in_row + 1)
                    continue
                failures_in_row, self._backoff_s = 0, self.config.reconnect_initial_s
                self.frames_read += 1
                yield Frame(position - 1, image, capture_time, raw.source_time, raw.spacing or self.reader.spacing, raw.truth)
        finally:
            self.close()

    def _prepare(self, raw_image) -> np.ndarray:
        if raw_image is None:
            raise ValueError("the source returned no image (None)")
        if not isinstance(raw_image, np.ndarray):
            raise TypeError(f"the source returned a {type(raw_image).__name__}, not an image array")
        grey = to_grey_u8(raw_image, self.reader.colour, self.reader.bits_stored)
        if self.config.roi == "auto" and self.roi is None:
            self.roi = _region_box(self.reader.spacing, grey.shape) or detect_fan(grey) or Roi(0, 0, grey.shape[1], grey.shape[0])
            log.info("source %s: measured region fixed at x,y,w,h = %s", self.description, self.roi)
        return np.ascontiguousarray(self.roi.crop(grey)) if self.roi is not None else grey

    def _give_up_after(self, failures_in_row: int) -> int:
        if failures_in_row >= self.config.max_consecutive_failures:
            raise SourceError(f"{self.description}: {failures_in_row} bad reads in a row, giving up "
                              f"({', '.join(f'{k}: {v}' for k, v in self.problems.counts.items())})")
        return failures_in_row

    def _reconnect(self, stop: threading.Event) -> None:
        """Close and reopen a live source; returns when it is open again or `stop` is set.

        The wait doubles after every failure, capped at `reconnect_max_s`, and is reset only by a
        good frame, so a source that opens but never delivers is not hammered either.
        """
        while not stop.is_set():
            self.reader.close()
            delay = self._backoff_s
            self._backoff_s = min(2.0 * delay, self.config.reconnect_max_s)
            if stop.wait(delay):
                return
            try:
                self.reader.open()
            except Exception as error:
                self.problems.count(f"reconnect failed ({type(error).__name__})", str(error))
                continue
            self.reconnects += 1
            log.info("source %s: reconnected after %.1f s", self.description, delay)
            return


def _region_box(spacing: PixelSpacing | None, shape_hw: tuple[int, int]) -> Roi | None:
    """The DICOM ultrasound region the spacing came from, clipped to the frame: the best "auto" ROI."""
    region = spacing.region if spacing is not None else None
    if region is None:
        return None
    x1, y1 = min(region.x1, shape_hw[1] - 1), min(region.y1, shape_hw[0] - 1)
    if x1 - region.x0 < 8 or y1 - region.y0 < 8:
        return None
    return Roi(region.x0, region.y0, x1 - region.x0 + 1, y1 - region.y0 + 1)


def _garbage_kind(raw_image, problem: Exception) -> str:
    if raw_image is None:
        return "no image (None)"
    if isinstance(problem, RoiError):
        return "frame does not fit the ROI"
    if isinstance(raw_image, np.ndarray) and raw_image.size == 0:
        return "empty frame"
    if isinstance(raw_image, np.ndarray) and raw_image.dtype not in (np.uint8, np.uint16):
        return f"unsupported dtype {raw_image.dtype}"
    return "unusable frame"


def open_source(spec: str, config: SourceConfig = SourceConfig()) -> FrameSource:
    """`--source` text → `FrameSource` (not opened yet).

    "sim" / "sim:SEED": a simulated sweep; a whole number: a camera or HDMI capture card (V4L2
    index); text containing "!": a GStreamer pipeline (live, unless it starts from filesrc or
    multifilesrc: then it ends with its file); "scheme://…": an RTSP/HTTP/UDP stream;
    a folder: its images, sorted naturally; a DICOM file: its (multi-frame) cine; another file: a
    video (or a single image). Raises `SourceError` when it is none of those.
    """
    text = str(spec).strip()
    if text == "sim" or text.startswith("sim:"):
        try:
            seed = int(text[4:]) if text.startswith("sim:") else 0
        except ValueError:
            raise SourceError(f"--source sim:SEED needs a whole-number seed, got {text!r}") from None
        return FrameSource(SimReader(seed, config.sim_segments, fps=config.fps or 25.0), config)
    if text.isdigit():
        return FrameSource(VideoCaptureReader(int(text), cv2.CAP_ANY, live=True, description=f"camera {text}"), config)
    if "!" in text:
        warn_if_rtsp_buffers(text)
        warn_if_video_range_grey(text)
        from_file = pipeline_reads_file(text)
        description = "GStreamer pipeline from a file" if from_file else "GStreamer pipeline"
        return FrameSource(VideoCaptureReader(text, cv2.CAP_GSTREAMER, live=not from_file, description=description), config)
    if "://" in text:
        return FrameSource(VideoCaptureReader(text, cv2.CAP_FFMPEG, live=True, description=f"stream {redact_url(text)}"), config)
    path = Path(text).expanduser()
    if path.is_dir():
        return FrameSource(ImageFilesReader.from_folder(path, fps=config.fps), config)
    if path.is_file():
        if is_dicom(path):
            return FrameSource(DicomCineReader(path), config)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return FrameSource(ImageFilesReader([path], fps=config.fps, description=f"image {path.name}"), config)
        return FrameSource(VideoCaptureReader(str(path), cv2.CAP_ANY, live=False, description=f"video {path.name}"), config)
    raise SourceError(f"--source {text!r} is not a file or folder that exists, a camera index, a URL, "
                      "a GStreamer pipeline (with '!') or 'sim'")
