"""Stream settings: one frozen section per stage (source, fusion, sinks) plus the run itself.

A stage receives only its own section. Every section checks its values at construction and
raises `ValueError` naming the field, so a bad setting fails before a frame is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_fetal.calibration import PixelSpacing
from edge_fetal.stream.roi import Roi

VIDEO_ENCODERS = ("auto", "cpu")  # the recording: see writers.VideoSink

MAX_INFERENCE_WORKERS = 8  # frames in the model at once; past this, memory grows and nothing is gained


@dataclass(frozen=True)
class SourceConfig:
    """How frames are read.

    roi: a fixed crop, "auto" (a DICOM's calibrated ultrasound region, else the image fan found on
    the first good frame; the box is then kept), or None (whole frame). fps: pacing rate for
    sources without one of their own (image folders), and an override for the others. Live sources
    reconnect after a failure, waiting `reconnect_initial_s`, doubling up to `reconnect_max_s`
    until a good frame arrives; a file source gives up after `max_consecutive_failures` bad reads
    in a row.
    """

    roi: Roi | str | None = None
    fps: float | None = None
    sim_segments: tuple[tuple[str, int], ...] | None = None  # None: the simulator's default sweep
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 8.0
    max_consecutive_failures: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.roi, str) and self.roi != "auto":
            raise ValueError(f"SourceConfig.roi must be a Roi, 'auto' or None, got {self.roi!r}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"SourceConfig.fps must be > 0, got {self.fps}")
        if not 0 < self.reconnect_initial_s <= self.reconnect_max_s:
            raise ValueError("SourceConfig needs 0 < reconnect_initial_s <= reconnect_max_s")
        if self.max_consecutive_failures < 1:
            raise ValueError("SourceConfig.max_consecutive_failures must be >= 1")


@dataclass(frozen=True)
class FusionConfig:
    """Plane hysteresis and the robust per-biometric estimate.

    A plane is entered after `enter_frames` consecutive frames classified as it with probability
    >= `plane_threshold`, and left after `leave_frames` consecutive frames of another plane.
    Samples enter a biometric's estimate when their shape quality is >= `min_quality`; a sample
    further than `outlier_mads` robust SDs from the median is rejected. A fused value is reported
    from `min_frames` inliers on, and is locked when it rests on >= `lock_frames` inliers whose
    robust SD is <= `lock_relative_spread` of the value. Only the last `window_frames` samples of a
    plane segment are kept.
    """

    plane_threshold: float = 0.7
    enter_frames: int = 5
    leave_frames: int = 5
    min_quality: float = 0.2
    outlier_mads: float = 3.5
    min_relative_sd: float = 0.002  # floor of the robust SD in the outlier test (fraction of the value)
    min_frames: int = 3
    lock_frames: int = 15
    lock_relative_spread: float = 0.02
    window_frames: int = 300

    def __post_init__(self) -> None:
        if not 0.0 < self.plane_threshold <= 1.0:
            raise ValueError(f"FusionConfig.plane_threshold must lie in (0, 1], got {self.plane_threshold}")
        for name in ("enter_frames", "leave_frames", "min_frames", "lock_frames", "window_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"FusionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lock_frames < self.min_frames or self.window_frames < self.lock_frames:
            raise ValueError("FusionConfig needs min_frames <= lock_frames <= window_frames")
        if not 0.0 <= self.min_quality <= 1.0:
            raise ValueError(f"FusionConfig.min_quality must lie in [0, 1], got {self.min_quality}")
        if self.outlier_mads <= 0 or self.lock_relative_spread <= 0 or self.min_relative_sd < 0:
            raise ValueError("FusionConfig.outlier_mads and lock_relative_spread must be > 0, min_relative_sd >= 0")


@dataclass(frozen=True)
class SinkConfig:
    """What is written. `queue_size`: frames waiting for the render thread (2-4 keeps latency low)."""

    video: bool = True
    display: bool = False
    best_frames: bool = True
    report_interval_s: float = 2.0
    queue_size: int = 3
    video_fps: float | None = None  # None: the source's rate, else 25
    dicom_sr: bool = False  # report_sr.dcm at the end (stream.dicom_sr): a PACS object, so only when asked
    video_encoder: str = "auto"  # VIDEO_ENCODERS: "auto" uses a Jetson's hardware encoder, "cpu" mp4v

    def __post_init__(self) -> None:
        if not 1 <= self.queue_size <= 16:
            raise ValueError(f"SinkConfig.queue_size must lie in 1..16, got {self.queue_size}")
        if self.report_interval_s <= 0:
            raise ValueError("SinkConfig.report_interval_s must be > 0")
        if self.video_encoder not in VIDEO_ENCODERS:
            raise ValueError(f"SinkConfig.video_encoder must be one of {', '.join(VIDEO_ENCODERS)}, "
                             f"got {self.video_encoder!r}")


@dataclass(frozen=True)
class StreamConfig:
    """The whole run. `realtime`: pace files at their frame rate and drop stale frames (live
    sources always do); otherwise every frame of a file is processed. `pixel_spacing`, when
    given, overrides the source's own calibration."""

    source: SourceConfig = field(default_factory=SourceConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    sinks: SinkConfig = field(default_factory=SinkConfig)
    pixel_spacing: PixelSpacing | None = None
    realtime: bool = False
    max_frames: int | None = None
    max_consecutive_failures: int = 50  # frames failing in a stage, in a row, before the run stops
    # Frames in the model at once. 1 gives the lowest latency (live); offline, with a backend that
    # takes parallel calls, one single-threaded call per core gives more frames/s (inference_plan).
    inference_workers: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.inference_workers <= MAX_INFERENCE_WORKERS:
            raise ValueError(f"StreamConfig.inference_workers must lie in 1..{MAX_INFERENCE_WORKERS}, "
                             f"got {self.inference_workers}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"StreamConfig.max_frames must be >= 1, got {self.max_frames}")
        if self.max_consecutive_failures < 1:
            raise ValueError("StreamConfig.max_consecutive_failures must be >= 1")


@dataclass(frozen=True)
class InferencePlan:
    """How the model runs in a stream: `workers` frames at once, `threads` intra-op threads each."""

    workers: int
    threads: int


def inference_plan(live: bool, cores: int, workers: int | None = None) -> InferencePlan:
    """Live (or `--realtime`): one frame at a time on every core, the lowest latency. Offline
    files: one single-threaded model call per core, the most frames/s (on 2 cores, 2 x 1 thread ran
    81 frames/s against 58 for 1 x 2 in the benchmark's model-only rows). `workers` overrides."""
    workers = workers or (1 if live else min(cores, MAX_INFERENCE_WORKERS))
    return InferencePlan(workers, max(1, cores // workers))
