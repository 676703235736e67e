"""Readers: one kind of source each, raw arrays out. `FrameSource` (sources.py) does the rest.

A reader's `read()` returns a `RawFrame`, raises `EndOfStream` at the end of a file, and raises
anything else for a failed read (a live reader: the connection is gone). `open()` raises
`SourceError` with a sentence a user can act on. Attributes: `live` (a camera or a network
stream: never blocked, reconnected on failure), `fps` (known after `open()`, or None),
`spacing` (the source's own calibration, or None) and `calibration_note` (why there is none),
`colour` ("bgr", "rgb" or "ybr" for 3-channel frames), `bits_stored` (for 16-bit frames).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from edge_fetal.calibration import PixelSpacing, spacing_from_dicom
from edge_fetal.errors import CalibrationError, EdgeFetalError
from edge_fetal.stream import gstreamer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".pnm")


class SourceError(EdgeFetalError):
    """A source that cannot be opened or that keeps failing."""


class EndOfStream(Exception):
    """Raised by `Reader.read()` when a file has no more frames."""


@dataclass(frozen=True)
class RawFrame:
    """What a reader read: the array as it came, its time in the source, per-frame extras."""

    image: Any
    source_time: float | None = None
    spacing: PixelSpacing | None = None
    truth: Any = None


class Reader:
    """Base class; see the module docstring for the contract."""

    live: bool = False
    fps: float | None = None
    spacing: PixelSpacing | None = None
    calibration_note: str | None = None
    colour: str = "bgr"
    bits_stored: int | None = None
    description: str = "source"
    identity = None  # a DICOM source's patient and study attributes (`dicom_sr.dicom_identity`)

    def open(self) -> None:
        """Acquire the device or file; raise `SourceError` when impossible."""

    def read(self) -> RawFrame:
        raise NotImplementedError

    def close(self) -> None:
        """Release it; safe to call twice."""


class VideoCaptureReader(Reader):
    """cv2.VideoCapture: a camera / HDMI capture card index, a video file, a URL, a GStreamer pipeline.

    A live stream that FFmpeg decodes (rtsp://, http://...) gets one decoding thread. OpenCV's
    default is one per CPU, and FFmpeg's frame threading holds every decoded picture back by one
    frame per thread beyond the first (FFmpeg doc/multithreading.txt): on an 8-CPU Jetson the
    overlay would trail the probe by 7 frames (~230 ms at 30 frames/s). Files keep the default:
    there a frame's delay costs nothing and the extra threads speed up decoding.

    Such a stream also gets short network timeouts. OpenCV's are 30 s: a stream that stalls
    would freeze the overlay for 30 s before a read fails and the source reconnects.
    """

    live_open_timeout_ms = 5000  # connecting, and each reconnect attempt
    live_read_timeout_ms = 3000  # no frame for this long: the read fails and the source reconnects

    def __init__(self, target: int | str, api: int, live: bool, description: str) -> None:
        self.target, self.api, self.live, self.description = target, api, live, description
        self._capture: cv2.VideoCapture | None = None

    def open(self) -> None:
        if self.api == cv2.CAP_GSTREAMER and not gstreamer.opencv_has_gstreamer():
            raise SourceError(f"{gstreamer.missing_gstreamer_hint()}: use a camera index, a file or a URL")
        capture = cv2.VideoCapture(self.target, self.api, self._capture_params())
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.description}")
        if self.live:
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog (where the driver obeys)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 1.0 <= fps <= 1000.0 else None
        self._capture = capture

    def _capture_params(self) -> list[int]:
        """OpenCV open parameters: for a live FFmpeg stream, one decoding thread and short timeouts."""
        if not (self.live and self.api == cv2.CAP_FFMPEG):
            return []
        return [cv2.CAP_PROP_N_THREADS, 1, cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.live_open_timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.live_read_timeout_ms]

    def read(self) -> RawFrame:
        if self._capture is None:
            raise ConnectionError(f"{self.description} is not open")
        ok, image = self._capture.read()
        if not ok:
            if self.live:
                raise ConnectionError(f"{self.description} delivered no frame")
            raise EndOfStream
        source_time = None if self.live else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return RawFrame(image, source_time)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class DicomCineReader(Reader):
    """A DICOM file, single- or multi-frame: frames from `ds.pixel_array`, spacing from its
    Sequence of Ultrasound Regions (`calibration.spacing_from_dicom`), rate from Frame Time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"DICOM {self.path.name}"
        self._frames: np.ndarray | None = None
        self._next = 0
        self._frame_time_s: float | None = None

    def open(self) -> None:
        import pydicom

        from edge_fetal.stream.dicom_sr import dicom_identity

        try:
            ds = pydicom.dcmread(str(self.path))
            pixels = ds.pixel_array
        except Exception as error:  # pydicom raises many types for unreadable or undecodable files
            raise SourceError(f"cannot read {self.description}: {error}") from None
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        self._frames = pixels if frames > 1 else pixels[None]
        try:
            self.spacing = spacing_from_dicom(ds, self._frames.shape[1:3])
        except CalibrationError as error:
            self.spacing, self.calibration_note = None, f"{self.description}: {error}"
        self.colour = "rgb"  # 3-sample frames: pydicom 3 converts YBR to RGB in pixel_array
        self.identity = dicom_identity(ds)
        self.bits_stored = int(ds.get("BitsStored", 8)) if self._frames.dtype == np.uint16 else None
        if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
            self._frames = (1 << (self.bits_stored or 8)) - 1 - self._frames  # white-is-zero → usual grey
        frame_time_ms = ds.get("FrameTime") or None
        rate = ds.get("CineRate") or ds.get("RecommendedDisplayFrameRate") or None
        if frame_time_ms and float(frame_time_ms) > 0:
            self._frame_time_s = float(frame_time_ms) / 1000.0
        elif rate and float(rate) > 0:
            self._frame_time_s = 1.0 / float(rate)
        self.fps = 1.0 / self._frame_time_s if self._frame_time_s else None
        self._next = 0

    @property
    def frame_count(self) -> int:
        """Frames in the open file (0 before `open` or after `close`)."""
        return 0 if self._frames is None else len(self._frames)

    def read(self) -> RawFrame:
        if self._frames is None or self._next >= len(self._frames):
            raise EndOfStream
        i, self._next = self._next, self._next + 1
        return RawFrame(self._frames[i], i * self._frame_time_s if self._frame_time_s else None)

    def close(self) -> None:
        self._frames = None


def is_dicom(path: Path) -> bool:
    """A DICOM Part 10 file ('DICM' at byte 128), or a .dcm file."""
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


class ImageFilesReader(Reader):
    """Still images read in order (16-bit kept as it is); `fps` only paces a `--realtime` run."""

    def __init__(self, paths: Sequence[Path], fps: float | None = None, description: str = "images") -> None:
        self.paths, self.fps, self.description = list(paths), fps, description
        self._next = 0

    @classmethod
    def from_folder(cls, folder: Path, fps: float | None = None) -> "ImageFilesReader":
        paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not paths:
            raise SourceError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return cls(paths, fps, f"folder {folder.name}")

    def open(self) -> None:
        self._next = 0

    def read(self) -> RawFrame:
        if self._next >= len(self.paths):
            raise EndOfStream
        i, self._next = self._next, self._next + 1
        return RawFrame(cv2.imread(str(self.paths[i]), cv2.IMREAD_UNCHANGED), i / self.fps if self.fps else None)


def natural_key(path: Path) -> list:
    """frame2.png before frame10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ArrayReader(Reader):
    """Frames already in memory (tests, the demo); `truths` and `spacings` ride along per frame."""

    def __init__(self, images: Sequence, fps: float | None = None, spacing: PixelSpacing | None = None,
                 truths: Sequence | None = None, description: str = "frames in memory",
                 spacings: Sequence[PixelSpacing | None] | None = None) -> None:
        self.images, self.fps, self.spacing, self.truths, self.description = list(images), fps, spacing, truths, description
        self.spacings = spacings
        self._next = 0

    def read(self) -> RawFrame:
        if self._next >= len(self.images):
            raise EndOfStream
        i, self._next = self._next, self._next + 1
        truth = self.truths[i] if self.truths is not None else None
        spacing = self.spacings[i] if self.spacings is not None else None
        return RawFrame(self.images[i], i / self.fps if self.fps else None, spacing, truth)


class SimReader(Reader):
    """A simulated probe (`data.simulator.render_sweep`) with its per-frame truth and spacing.

    With explicit `segments` it plays that one sweep and ends; without, it scans like a live
    probe: sweep after sweep through the default planes (seed, seed + 1, ...) until stopped.
    """

    def __init__(self, seed: int, segments: Sequence[tuple[str, int]] | None = None, fps: float = 25.0) -> None:
        self.seed, self.segments, self.fps = seed, segments, fps
        self.description = f"simulated sweep (seed {seed})" if segments else f"simulated probe, endless sweeps from seed {seed}"
        self._frames: Iterator | None = None
        self._next = 0

    def open(self) -> None:
        self._frames = self._sweeps()
        self._next = 0

    def _sweeps(self) -> Iterator:
        from edge_fetal.data.simulator import DEFAULT_SEGMENTS, render_sweep

        if self.segments:
            yield from render_sweep(self.seed, self.segments)
            return
        seed = self.seed
        while True:
            yield from render_sweep(seed, DEFAULT_SEGMENTS)
            seed += 1

    def read(self) -> RawFrame:
        try:
            frame = next(self._frames)
        except StopIteration:
            raise EndOfStream from None
        i, self._next = self._next, self._next + 1
        spacing = PixelSpacing(frame.truth.mm_per_px, "simulator truth")
        return RawFrame(frame.image, i / self.fps, spacing, frame.truth)


def redact_url(url: str) -> str:
    """rtsp://user:secret@host/… → rtsp://***@host/… (never log credentials)."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)
