"""Sinks: the overlay draws per-frame geometry only in its plane; best-frame PNGs follow the reported value."""

from __future__ import annotations

import time

import cv2
import numpy as np

from edge_fetal.biometry import Ellipse, Measurement, ShapeQuality, measure_head, rasterise_ellipse
from edge_fetal.calibration import PixelSpacing
from edge_fetal.stream.config import FusionConfig
from edge_fetal.stream.fusion import Fusion
from edge_fetal.stream.overlay import draw_overlay
from edge_fetal.stream.record import FrameRecord, event_json
from edge_fetal.stream.sinks import new_output_folder
from edge_fetal.stream.sources import Frame
from edge_fetal.stream.writers import BestFrameSaver, Display, VideoSink

HW = (300, 400)
SKULL = Ellipse(250, 170, 90, 70, 0)
CONFIG = FusionConfig(enter_frames=2, leave_frames=2, min_frames=2, lock_frames=4)


def record_for(fusion: Fusion, index: int, plane: str, spacing=PixelSpacing(0.2, "test")) -> FrameRecord:
    image = np.full(HW, 60, np.uint8)
    measurement = measure_head(rasterise_ellipse(HW, SKULL), spacing.mm_per_px if spacing else None) if plane == "head" else None
    state = fusion.update(index, index / 25, plane, 0.97, measurement)
    frame = Frame(index, image, 0.0, None, spacing)
    return FrameRecord(frame, {}, measurement, state, spacing, {"end_to_end": 12.0}, 0.01, 25.0)


def right_end_of_skull(image: np.ndarray) -> np.ndarray:
    return image[int(SKULL.center_y_px), int(SKULL.center_x_px + SKULL.semi_major_px)]


def test_geometry_is_drawn_only_when_the_frame_is_of_the_stable_plane():
    fusion = Fusion(CONFIG)
    first = record_for(fusion, 0, "head")  # plane not established yet
    assert not first.frame_in_plane
    assert right_end_of_skull(draw_overlay(first)).tolist() == [60, 60, 60]
    second = record_for(fusion, 1, "head")  # entered
    assert second.frame_in_plane and second.state.shown
    b, g, r = right_end_of_skull(draw_overlay(second)).tolist()
    assert g > 150 and g > r and g > b  # the green outline
    event = event_json(second, start_time=0.0)
    assert set(event["measurements"]) == {"hc", "bpd", "ofd"} and "value_mm" in event["measurements"]["hc"]
    assert "withheld" in event_json(first, 0.0)["measurements"]["hc"]


def test_best_frame_png_follows_the_reported_estimate(tmp_path):
    fusion, saver = Fusion(CONFIG), BestFrameSaver(tmp_path)
    noisy = [180, 195, 170, 188]
    for i, hc in enumerate(noisy + [0] * 3 + [200.0, 200.1, 199.9, 200.0, 200.05]):
        plane = "other" if hc == 0 else "head"
        values = {"hc": hc, "bpd": hc / 3.4, "ofd": hc / 2.9}
        quality = ShapeQuality(5000, 0.5, 0.8, False, 1, score=0.5 + 0.01 * i)
        measurement = Measurement("head", None, {k: v / 0.1 for k, v in values.items()}, 0.1, quality) if hc else None
        state = fusion.update(i, i / 25, plane, 0.97, measurement)
        saver.offer(state, np.full((8, 8, 3), i, np.uint8))
    saver.flush()
    hc = state.fused["hc"]
    assert hc.locked and hc.segment == 3
    on_disk = cv2.imread(str(tmp_path / "best_hc.png"))
    assert int(on_disk[0, 0, 0]) == hc.best.index  # the image of the reported best frame, not the first segment's
    assert saver.image_for("hc", hc.segment, hc.best.index) == "best_hc.png"
    assert not list(tmp_path.glob(".*tmp*"))


def test_best_frames_are_written_at_most_once_per_interval_and_the_last_one_on_flush(tmp_path, monkeypatch):
    now = [0.0]
    fusion, saver = Fusion(CONFIG), BestFrameSaver(tmp_path, min_interval_s=1.0, clock=lambda: now[0])
    encodes = []
    real_imencode = cv2.imencode
    monkeypatch.setattr(cv2, "imencode", lambda ext, image, *a: encodes.append(ext) or real_imencode(ext, image, *a))
    for i in range(50):  # 2 s of frames at 25/s, each a better head than the last
        now[0] = i / 25
        quality = ShapeQuality(5000, 0.5, 0.8, False, 1, score=0.5 + 0.01 * i)
        measurement = Measurement("head", None, {"hc": 2000.0, "bpd": 590.0, "ofd": 690.0}, 0.1, quality)
        state = fusion.update(i, now[0], "head", 0.97, measurement)
        saver.offer(state, np.full((8, 8, 3), i, np.uint8))
    hc = state.fused["hc"]
    assert hc.best.index == 49
    assert 0 < len(encodes) <= 3, "at most one PNG per second, shared by HC, BPD and OFD, not one per frame"
    assert saver.image_for("hc", hc.segment, 49) is None, "the latest best frame is still pending"
    saver.flush()
    assert int(cv2.imread(str(tmp_path / "best_hc.png"))[0, 0, 0]) == 49
    assert saver.image_for("hc", hc.segment, 49) == "best_hc.png"
    png = {name: (tmp_path / f"best_{name}.png").read_bytes() for name in ("hc", "bpd", "ofd")}
    assert png["hc"] == png["bpd"] == png["ofd"], "one frame behind all three head values"


def test_video_sink_pads_odd_sizes_and_is_readable(tmp_path):
    sink = VideoSink(tmp_path / "v.mp4", 25.0)
    for i in range(5):
        sink.write(np.full((31, 45, 3), 40 * i, np.uint8))
    sink.close()
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    ok, image = capture.read()
    assert ok and image.shape == (32, 46, 3)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_display_switches_itself_off_without_a_gui(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    display = Display()
    assert display.show(np.zeros((4, 4, 3), np.uint8)) is True and not display.enabled
    display.close()


def test_a_new_output_folder_is_named_by_the_start_time_and_never_one_that_exists(tmp_path):
    start = time.strptime("2026-11-30 01:02:03", "%Y-%m-%d %H:%M:%S")
    first = new_output_folder(tmp_path, start)
    assert first == tmp_path / "20261130T010203Z"
    first.mkdir()
    assert new_output_folder(tmp_path, start) == tmp_path / "20261130T010203Z-2"
