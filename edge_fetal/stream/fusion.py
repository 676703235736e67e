"""Fusion: per-frame plane calls and measurements → a stable plane, robust biometry, GA and EFW.

    fusion = Fusion(FusionConfig())
    state = fusion.update(index, time_s, plane, probability, measurement)   # once per frame
    state.plane, state.shown, state.fused["hc"].value, state.ga, state.efw

Plane hysteresis: a plane is entered after `enter_frames` consecutive confident frames of it and
left after `leave_frames` consecutive frames of another plane, so one misclassified frame neither
opens nor closes a plane. Each stay in a plane is a segment. Within a segment, each biometric of
the plane (head: HC, BPD, OFD; abdomen: AC; femur: FL) collects one sample per frame that is of
the current plane, confident and of good enough shape quality. The estimate rejects samples
beyond `outlier_mads` robust SDs (1.4826 × MAD) of the median, then takes the median of the
inliers; its spread is their robust SD (and IQR). It is locked when enough inliers agree closely.
The best frame of a segment is its highest quality × plane-probability inlier.

Fused values outlive their plane (a scan collects HC, then AC, then FL): when a segment closes its
estimate is kept, and a later segment of the same plane replaces it only if better (locked beats
unlocked, then the smaller relative spread). Per-frame values (`shown`) exist only while the frame
is of the current plane. Values are in mm when the spacing is known; otherwise in px, and GA /
EFW are not computed. Pure Python and numpy; one instance per stream, called from one thread.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge_fetal.biometry import NO_SPACING_REASON, Measurement
from edge_fetal.biometry import clinical
from edge_fetal.stream.config import FusionConfig

BIOMETRICS_BY_PLANE = {"head": ("hc", "bpd", "ofd"), "abdomen": ("ac",), "femur": ("fl",)}
MAD_TO_SD = 1.4826
GA_SINGLE = {"hc": clinical.ga_from_hc_weeks, "bpd": clinical.ga_from_bpd_weeks,
             "ac": clinical.ga_from_ac_weeks, "fl": clinical.ga_from_fl_weeks}


@dataclass(frozen=True)
class Sample:
    index: int
    time_s: float
    value: float
    score: float  # shape quality × plane probability


@dataclass(frozen=True)
class FusedBiometry:
    """One biometric fused over a plane segment. `spread` is the robust SD of the inliers."""

    name: str
    plane: str
    value: float
    spread: float
    iqr: float
    unit: str  # "mm" or "px"
    frames_used: int
    frames_rejected: int
    locked: bool
    best: Sample
    segment: int

    @property
    def relative_spread(self) -> float:
        return self.spread / abs(self.value) if self.value else math.inf


@dataclass(frozen=True)
class ClinicalEstimate:
    """GA (weeks) or EFW (g) from fused values; `flag` says why it should not be trusted, if so."""

    value: float
    formula: str
    inputs: tuple[str, ...]
    inputs_locked: bool
    flag: str | None = None


@dataclass(frozen=True)
class FusionState:
    """What the stream knows after one frame."""

    frame_index: int
    frame_plane: str
    frame_probability: float
    plane: str | None  # the stable plane (None until one is entered, and after leaving one)
    segment: int
    shown: dict[str, float]  # this frame's values, only when it is of the stable plane and usable
    unit: str | None
    note: str | None  # why this frame's values are not shown
    fused: dict[str, FusedBiometry]
    ga: ClinicalEstimate | None
    ga_by_parameter: dict[str, ClinicalEstimate] = field(default_factory=dict)
    efw: ClinicalEstimate | None = None
    new_best: tuple[str, ...] = ()  # biometrics whose best frame (in this segment) is this frame


class _Track:
    """The samples of one biometric in one segment. The outlier band and the estimate are worked
    out once per added sample (the stream asks for the estimate every frame)."""

    def __init__(self, name: str, plane: str, segment: int, config: FusionConfig) -> None:
        self.name, self.plane, self.segment, self.config = name, plane, segment, config
        self.samples: deque[Sample] = deque(maxlen=config.window_frames)
        self.unit: str | None = None
        self.best: Sample | None = None
        self._values = np.zeros(0)
        self._limits = (-math.inf, math.inf)
        self._estimate: FusedBiometry | None = None
        self._estimate_known = False  # "no estimate yet" (None) is a result too: worked out once per sample

    def add(self, sample: Sample, unit: str) -> bool:
        """Add one sample; True when it becomes the segment's best frame."""
        if unit != self.unit:  # the spacing became known (or was lost): start over in the new unit
            self.samples.clear()
            self.unit, self.best = unit, None
        self.samples.append(sample)
        self._values = np.fromiter((s.value for s in self.samples), dtype=np.float64, count=len(self.samples))
        self._limits = low, high = self._band(self._values)
        self._estimate_known = False
        if not low <= sample.value <= high:
            return False
        if self.best is None or sample.score > self.best.score or not low <= self.best.value <= high \
                or self.best not in self.samples:
            self.best = sample
            return True
        return False

    def _band(self, values: np.ndarray) -> tuple[float, float]:
        median = quantile(np.sort(values), 0.5)
        mad = quantile(np.sort(np.abs(values - median)), 0.5)
        sd = max(MAD_TO_SD * mad, self.config.min_relative_sd * abs(median))
        return median - self.config.outlier_mads * sd, median + self.config.outlier_mads * sd

    def estimate(self) -> FusedBiometry | None:
        if not self._estimate_known:
            self._estimate, self._estimate_known = self._work_out_estimate(), True
        return self._estimate

    def _work_out_estimate(self) -> FusedBiometry | None:
        if not self.samples or self.best is None:
            return None
        low, high = self._limits
        values = self._values
        inliers = values[(values >= low) & (values <= high)]
        if inliers.size < self.config.min_frames:
            return None
        ordered = np.sort(inliers)
        q25, value, q75 = quantile(ordered, 0.25), quantile(ordered, 0.5), quantile(ordered, 0.75)
        spread = MAD_TO_SD * quantile(np.sort(np.abs(inliers - value)), 0.5)
        locked = inliers.size >= self.config.lock_frames and spread <= self.config.lock_relative_spread * abs(value)
        return FusedBiometry(self.name, self.plane, value, spread, q75 - q25, self.unit or "px",
                             int(inliers.size), int(values.size - inliers.size), bool(locked), self.best, self.segment)


def quantile(ordered: np.ndarray, q: float) -> float:
    """The q-quantile of sorted values, interpolated linearly (numpy's default; q=0.5 is the median).
    Written out because np.median / np.percentile cost ~40 us each in overhead on a few hundred
    values, and fusion takes a dozen per frame."""
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (position - below) * (ordered[above] - ordered[below]))


def preferred(new: FusedBiometry | None, old: FusedBiometry | None) -> FusedBiometry | None:
    """The better of two estimates of one biometric: mm over px, locked over unlocked, then the
    smaller relative spread (ties go to the newer)."""
    if new is None or old is None:
        return new or old
    key_new = (new.unit == "mm", new.locked, -new.relative_spread)
    key_old = (old.unit == "mm", old.locked, -old.relative_spread)
    return new if key_new >= key_old else old


def clinical_estimates(fused: dict[str, FusedBiometry]):
    """(GA, GA per parameter, EFW) from fused values in mm: Hadlock 1984 GA (HC, AC and FL combined
    when all three are fused, else the first of HC, BPD, AC, FL), Hadlock 1985 EFW (HC, AC, FL)."""
    mm = {name: f for name, f in fused.items() if f.unit == "mm" and f.value > 0}
    by_parameter = {}
    for name, formula in GA_SINGLE.items():
        if name in mm:
            weeks = formula(mm[name].value)
            by_parameter[name] = ClinicalEstimate(weeks, f"Hadlock 1984 ({name.upper()})", (name,), mm[name].locked,
                                                  clinical.ga_out_of_range(weeks))
    if not all(name in mm for name in ("hc", "ac", "fl")):
        ga = next((by_parameter[name] for name in ("hc", "bpd", "ac", "fl") if name in by_parameter), None)
        return ga, by_parameter, None
    hc, ac, fl = mm["hc"], mm["ac"], mm["fl"]
    locked = hc.locked and ac.locked and fl.locked
    weeks = clinical.ga_from_hc_ac_fl_weeks(hc.value, ac.value, fl.value)
    ga = ClinicalEstimate(weeks, "Hadlock 1984 (HC, AC, FL)", ("hc", "ac", "fl"), locked, clinical.ga_out_of_range(weeks))
    efw = ClinicalEstimate(clinical.efw_hadlock_g(hc.value, ac.value, fl.value), "Hadlock 1985 (HC, AC, FL)",
                           ("hc", "ac", "fl"), locked)
    return ga, by_parameter, efw


def usable_values(measurement: Measurement | None) -> tuple[dict[str, float], str | None, str | None]:
    """(values, unit, reason): mm when shown, px when withheld only for want of a spacing, else the reason."""
    if measurement is None:
        return {}, None, "no structure to measure in this plane"
    if measurement.shown:
        return dict(measurement.values_mm), "mm", None
    if measurement.withheld_reason == NO_SPACING_REASON and measurement.values_px:
        return dict(measurement.values_px), "px", None
    return {}, None, measurement.withheld_reason


class Fusion:
    """Plane hysteresis and per-biometric fusion; see the module docstring."""

    def __init__(self, config: FusionConfig = FusionConfig()) -> None:
        self.config = config
        self.plane: str | None = None
        self.segment = 0
        self._candidate: str | None = None
        self._candidate_frames = 0
        self._away_frames = 0
        self._tracks: dict[str, _Track] = {}
        self._kept: dict[str, FusedBiometry] = {}

    def update(self, index: int, time_s: float, plane: str, probability: float,
               measurement: Measurement | None) -> FusionState:
        """Fold in one frame: its plane call (argmax and its probability) and its measurement."""
        self._follow_plane(plane, probability)
        shown, unit, note, new_best = {}, None, None, []
        if plane != self.plane:
            note = "plane not established yet" if self.plane is None else f"frame reads as {plane}, not {self.plane}"
        elif probability < self.config.plane_threshold:
            note = f"plane probability {probability:.2f} below {self.config.plane_threshold:.2f}"
        elif plane in BIOMETRICS_BY_PLANE:
            values, unit, note = usable_values(measurement)
            score = measurement.quality.score if measurement is not None and measurement.quality else 0.0
            if values and score < self.config.min_quality:
                values, unit, note = {}, None, f"shape quality {score:.2f} below {self.config.min_quality:.2f}"
            for name in BIOMETRICS_BY_PLANE[plane]:
                if name in values and self._tracks[name].add(Sample(index, time_s, values[name], score * probability), unit):
                    new_best.append(name)
            shown = values
        fused = self.fused()
        ga, ga_by_parameter, efw = clinical_estimates(fused)
        return FusionState(index, plane, float(probability), self.plane, self.segment, shown, unit if shown else None,
                           note, fused, ga, ga_by_parameter, efw, tuple(new_best))

    def fused(self) -> dict[str, FusedBiometry]:
        """The best estimate of every biometric seen so far (kept segments and the current one)."""
        out = dict(self._kept)
        for name, track in self._tracks.items():
            best = preferred(track.estimate(), out.get(name))
            if best is not None:
                out[name] = best
        return out

    def _follow_plane(self, plane: str, probability: float) -> None:
        self._away_frames = self._away_frames + 1 if self.plane is not None and plane != self.plane else 0
        if plane != self.plane and probability >= self.config.plane_threshold:
            self._candidate_frames = self._candidate_frames + 1 if plane == self._candidate else 1
            self._candidate = plane
        else:
            self._candidate, self._candidate_frames = None, 0
        if self._candidate is not None and self._candidate_frames >= self.config.enter_frames:
            self._close_segment()
            self.plane, self.segment = self._candidate, self.segment + 1
            self._tracks = {name: _Track(name, self.plane, self.segment, self.config)
                            for name in BIOMETRICS_BY_PLANE.get(self.plane, ())}
            self._candidate, self._candidate_frames, self._away_frames = None, 0, 0
        elif self.plane is not None and self._away_frames >= self.config.leave_frames:
            self._close_segment()
            self.plane, self._away_frames = None, 0

    def _close_segment(self) -> None:
        for name, track in self._tracks.items():
            kept = preferred(track.estimate(), self._kept.get(name))
            if kept is not None:
                self._kept[name] = kept
        self._tracks = {}
