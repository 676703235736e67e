"""Fusion on scripted per-frame results: hysteresis, outliers, lock, best frame, what is shown, GA/EFW."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_fetal.biometry import NO_SPACING_REASON, Measurement, ShapeQuality
from edge_fetal.biometry import clinical
from edge_fetal.stream.config import FusionConfig
from edge_fetal.stream.fusion import Fusion, quantile

MM_PER_PX = 0.1
CONFIG = FusionConfig(enter_frames=3, leave_frames=4, min_frames=3, lock_frames=8, lock_relative_spread=0.02)


def measured(structure: str, values_mm: dict[str, float], score: float = 0.9, spacing: float | None = MM_PER_PX,
             reason: str | None = None) -> Measurement:
    quality = ShapeQuality(area_px=5000, fit_residual_px=0.5, aspect_ratio=0.8, touches_border=False, components=1,
                           score=score)
    values_px = {name: value / MM_PER_PX for name, value in values_mm.items()}
    if reason is None and spacing is None:
        reason = NO_SPACING_REASON
    return Measurement(structure, None, values_px, spacing, quality, reason)


def head(hc: float, score: float = 0.9, **kw) -> Measurement:
    return measured("head", {"hc": hc, "bpd": hc / 3.4, "ofd": hc / 2.9}, score, **kw)


class Feeder:
    """Feeds frames with consecutive indices; remembers every state."""

    def __init__(self, config: FusionConfig = CONFIG) -> None:
        self.fusion, self.index, self.states = Fusion(config), 0, []

    def __call__(self, plane: str, measurement: Measurement | None = None, probability: float = 0.95):
        state = self.fusion.update(self.index, self.index / 25, plane, probability, measurement)
        self.index += 1
        self.states.append(state)
        return state


def test_a_plane_is_entered_after_k_confident_frames_only():
    feed = Feeder()
    assert feed("head", head(180)).plane is None
    assert feed("head", head(180), probability=0.5).plane is None  # not confident: the count restarts
    assert feed("head", head(180)).plane is None
    assert feed("head", head(180)).plane is None
    state = feed("head", head(180))
    assert state.plane == "head" and state.shown["hc"] == pytest.approx(180)


def test_a_plane_is_left_after_m_frames_of_another_plane_and_one_stray_frame_changes_nothing():
    feed = Feeder(FusionConfig(enter_frames=3, leave_frames=4, min_frames=3, lock_frames=8))
    for _ in range(5):
        feed("head", head(180))
    assert feed("other").plane == "head"  # one stray frame
    assert feed("head", head(180)).plane == "head"
    for _ in range(2):
        assert feed("abdomen", measured("abdomen", {"ac": 150}), probability=0.6).plane == "head"  # not confident
    assert feed("abdomen", measured("abdomen", {"ac": 150}), probability=0.6).plane == "head"
    assert feed("abdomen", measured("abdomen", {"ac": 150}), probability=0.6).plane is None  # 4th away: left
    assert feed("femur", measured("femur", {"fl": 50})).plane is None
    assert feed("femur", measured("femur", {"fl": 50})).plane is None
    assert feed("femur", measured("femur", {"fl": 50})).plane == "femur"


def test_outliers_are_rejected_and_the_value_is_the_inlier_median():
    feed = Feeder()
    values = [180 + 0.5 * math.sin(1.7 * i) for i in range(30)]
    values[10] = values[20] = 240.0  # e.g. a mask that leaked into the placenta
    values[25] = 90.0
    for v in values:
        state = feed("head", head(float(v)))
    hc = state.fused["hc"]
    inliers = [v for i, v in enumerate(values) if i >= CONFIG.enter_frames - 1 and i not in (10, 20, 25)]
    assert hc.frames_rejected == 3 and hc.frames_used == len(inliers)
    assert hc.value == pytest.approx(float(np.median(inliers)), abs=1e-9)
    assert hc.spread < 1.0 and hc.unit == "mm"


def test_lock_needs_enough_frames_and_a_small_spread():
    steady, noisy = Feeder(), Feeder()
    rng = np.random.default_rng(2)
    for i in range(CONFIG.enter_frames - 1 + CONFIG.lock_frames - 1):  # frames before the plane is entered are not fused
        state = steady("head", head(180 + 0.3 * rng.standard_normal()))
    assert state.fused["hc"].frames_used == CONFIG.lock_frames - 1 and not state.fused["hc"].locked
    state = steady("head", head(180.1))
    assert state.fused["hc"].locked
    for i in range(40):
        state = noisy("head", head(180 + 12 * rng.standard_normal()))  # ±6.7 %: never locks
    assert not state.fused["hc"].locked and state.fused["hc"].spread > 0.02 * 180


def test_best_frame_is_the_best_scoring_inlier_never_an_outlier():
    feed = Feeder()
    scores = [0.5, 0.6, 0.95, 0.7, 0.99, 0.6, 0.8]
    values = [180, 180.2, 179.9, 180.1, 260.0, 180.0, 179.8]  # the top-quality frame is an outlier
    new_best = []
    for v, s in zip(values, scores):
        new_best.append("hc" in feed("head", head(v, s)).new_best)
    best = feed.states[-1].fused["hc"].best
    assert best.index == 2 and best.score == pytest.approx(0.95 * 0.95)
    assert new_best[4] is False and new_best[2] is True


def test_values_are_shown_only_in_their_plane_but_fused_values_persist():
    feed = Feeder()
    state = feed("head", head(180))
    assert state.shown == {} and "not established" in state.note  # before the plane is entered
    for _ in range(6):
        feed("head", head(180))
    for _ in range(3):
        state = feed("abdomen", measured("abdomen", {"ac": 150}))  # abdomen entered on the 3rd
    assert state.plane == "abdomen" and set(state.shown) == {"ac"}
    assert state.fused["hc"].value == pytest.approx(180)  # HC survives leaving the head
    assert all(set(s.shown) <= {"ac"} for s in feed.states if s.plane == "abdomen")
    assert all(not s.shown for s in feed.states if s.plane != s.frame_plane)
    state = feed("head", head(300))  # one head frame inside the abdomen segment: not shown, not fused
    assert state.shown == {} and state.fused["hc"].value == pytest.approx(180)


def test_withheld_and_low_quality_frames_are_not_fused():
    feed = Feeder()
    for _ in range(5):
        feed("head", head(180))
    state = feed("head", head(250, reason="outline is not elliptical (fit residual 9.0 px)", score=0.0))
    assert state.shown == {} and "not elliptical" in state.note
    state = feed("head", head(250, score=0.1))
    assert state.shown == {} and "quality" in state.note
    assert state.fused["hc"].frames_used == 3 + 0 and state.fused["hc"].value == pytest.approx(180)


def test_ga_and_efw_come_from_the_fused_values():
    feed = Feeder()
    for _ in range(6):
        state = feed("head", head(250))
    assert state.ga.formula == "Hadlock 1984 (HC)" and state.efw is None
    assert state.ga.value == pytest.approx(clinical.ga_from_hc_weeks(state.fused["hc"].value))
    for _ in range(6):
        feed("abdomen", measured("abdomen", {"ac": 230}))
    for _ in range(6):
        state = feed("femur", measured("femur", {"fl": 50}))
    hc, ac, fl = (state.fused[n].value for n in ("hc", "ac", "fl"))
    assert state.ga.formula == "Hadlock 1984 (HC, AC, FL)"
    assert state.ga.value == pytest.approx(clinical.ga_from_hc_ac_fl_weeks(hc, ac, fl))
    assert state.efw.value == pytest.approx(clinical.efw_hadlock_g(hc, ac, fl))
    assert state.efw.formula == "Hadlock 1985 (HC, AC, FL)"
    assert set(state.ga_by_parameter) == {"hc", "bpd", "ac", "fl"}


def test_without_spacing_values_are_fused_in_px_and_no_ga_is_given():
    feed = Feeder()
    for _ in range(6):
        state = feed("head", head(180, spacing=None))
    assert state.unit == "px" and state.shown["hc"] == pytest.approx(1800)
    assert state.fused["hc"].unit == "px" and state.ga is None and state.efw is None


def test_a_locked_later_segment_replaces_an_unlocked_earlier_one():
    feed = Feeder()
    rng = np.random.default_rng(3)
    for _ in range(6):
        feed("head", head(180 + 10 * rng.standard_normal()))  # noisy, short: unlocked
    for _ in range(6):
        feed("other")
    first = feed.states[-1].fused["hc"]
    assert not first.locked
    for _ in range(12):
        state = feed("head", head(200 + 0.2 * rng.standard_normal()))
    assert state.fused["hc"].locked and state.fused["hc"].value == pytest.approx(200, abs=0.5)
    assert state.fused["hc"].segment > first.segment


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="plane_threshold"):
        FusionConfig(plane_threshold=1.5)
    with pytest.raises(ValueError, match="min_frames <= lock_frames"):
        FusionConfig(min_frames=10, lock_frames=5)
    assert math.isfinite(FusionConfig().lock_relative_spread)


@pytest.mark.parametrize("count", [1, 2, 3, 8, 301])
def test_fusion_quantiles_are_numpys(count):
    """Fusion's own quantile (written out for speed) gives numpy's median and quartiles exactly."""
    values = np.random.default_rng(count).normal(270.0, 3.0, size=count)
    ordered = np.sort(values)
    assert quantile(ordered, 0.5) == pytest.approx(np.median(values), abs=1e-12)
    assert quantile(ordered, 0.25) == pytest.approx(np.percentile(values, 25), abs=1e-12)
    assert quantile(ordered, 0.75) == pytest.approx(np.percentile(values, 75), abs=1e-12)
