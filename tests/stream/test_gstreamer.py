"""GStreamer through OpenCV: the recording's encoder choice, the Jetson's install trap, GStreamer sources.

The pip OpenCV wheel (CI) has no GStreamer: there the tests check the choice and the fallbacks.
The tests marked "needs GStreamer" run where OpenCV has it (a system OpenCV, or JetPack's), with
x264enc standing in for the Jetson's nvv4l2h264enc, and skip elsewhere saying why.
"""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import pytest

from edge_fetal.cli import _parser
from edge_fetal.stream import gstreamer
from edge_fetal.stream.config import VIDEO_ENCODERS, SinkConfig
from edge_fetal.stream.readers import SourceError
from edge_fetal.stream.sources import open_source
from edge_fetal.stream.writers import VideoSink

needs_gstreamer = pytest.mark.skipif(not gstreamer.opencv_has_gstreamer(),
                                     reason="this OpenCV build has no GStreamer (the pip wheel); a system OpenCV has")
STAND_IN = {"x264enc": "appsrc ! videoconvert ! x264enc speed-preset=ultrafast ! h264parse ! qtmux ! "
                       "filesink location={location}"}


@pytest.fixture
def jetson(tmp_path, monkeypatch):
    """This machine seen as a Jetson (L4T's release file present)."""
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 3.0\n")
    monkeypatch.setattr(gstreamer, "JETSON_RELEASE_FILE", release)


def test_a_jetson_is_known_by_its_release_file_or_in_a_container_by_its_device_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(gstreamer, "JETSON_RELEASE_FILE", tmp_path / "absent")
    monkeypatch.setattr(gstreamer, "DEVICE_TREE_COMPATIBLE", tmp_path / "compatible")
    assert not gstreamer.on_jetson()
    (tmp_path / "compatible").write_bytes(b"raspberrypi,5-model-b\x00brcm,bcm2712\x00")
    assert not gstreamer.on_jetson()
    (tmp_path / "compatible").write_bytes(b"nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00")
    assert gstreamer.on_jetson()


def _frames(n: int = 12) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        image = np.full((120, 160, 3), 30 + 10 * i, np.uint8)
        cv2.circle(image, (80, 60), 30, (0, 255, 255), 2)
        frames.append(image)
    return frames


def _write(sink: VideoSink, frames: list[np.ndarray]) -> None:
    for frame in frames:
        sink.write(frame)
    sink.close()


def test_off_a_jetson_the_recording_is_mp4v_on_the_cpu(read_video, tmp_path, monkeypatch):
    monkeypatch.setattr(gstreamer, "JETSON_RELEASE_FILE", tmp_path / "absent")
    monkeypatch.setattr(gstreamer, "DEVICE_TREE_COMPATIBLE", tmp_path / "absent")
    assert gstreamer.recording_pipelines("auto") == {} and gstreamer.recording_pipelines("cpu") == {}
    sink = VideoSink(tmp_path / "v.mp4", 25.0)
    _write(sink, _frames())
    assert sink.encoder_used == "mp4v" and len(read_video(tmp_path / "v.mp4")) == 12


def test_on_a_jetson_auto_tries_its_hardware_encoder_first_and_cpu_never(jetson, monkeypatch):
    monkeypatch.setattr(gstreamer, "opencv_has_gstreamer", lambda: True)
    pipelines = gstreamer.recording_pipelines("auto")
    assert list(pipelines) == ["nvv4l2h264enc"] and "{location}" in pipelines["nvv4l2h264enc"]
    assert gstreamer.recording_pipelines("cpu") == {}


def test_a_jetson_whose_opencv_lacks_gstreamer_records_mp4v_and_says_which_wheel_to_remove(
        read_video, jetson, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(gstreamer, "opencv_has_gstreamer", lambda: False)
    assert gstreamer.recording_pipelines("auto") == {}
    with caplog.at_level(logging.WARNING, logger="edge_fetal"):
        sink = VideoSink(tmp_path / "v.mp4", 25.0)
        _write(sink, _frames())
    assert sink.encoder_used == "mp4v" and len(read_video(tmp_path / "v.mp4")) == 12
    assert "pip uninstall opencv-python-headless" in caplog.text


def test_a_jetson_whose_opencv_lacks_gstreamer_refuses_a_pipeline_source_with_the_fix(jetson, monkeypatch):
    monkeypatch.setattr(gstreamer, "opencv_has_gstreamer", lambda: False)
    with pytest.raises(SourceError, match="pip uninstall opencv-python-headless"):
        open_source("nvarguscamerasrc ! nvvidconv ! video/x-raw,format=GRAY8 ! appsink").open()


def test_a_pipeline_that_does_not_open_falls_back_to_mp4v_and_loses_no_frame(read_video, tmp_path, caplog):
    broken = {"noencoder": "appsrc ! no-such-encoder-element ! filesink location={location}"}
    with caplog.at_level(logging.WARNING, logger="edge_fetal"):
        sink = VideoSink(tmp_path / "v.mp4", 25.0, pipelines=broken)
        _write(sink, _frames())
    assert sink.encoder_used == "mp4v" and len(read_video(tmp_path / "v.mp4")) == 12
    assert "noencoder did not open or encoded nothing" in caplog.text


@needs_gstreamer
def test_a_pipeline_that_opens_but_refuses_the_frames_falls_back_before_the_recording_is_lost(read_video, tmp_path,
                                                                                               caplog):
    # caps for another frame size: the pipeline opens, then every frame fails to negotiate
    refuses = {"x264enc": "appsrc ! videoconvert ! video/x-raw,format=BGRx,width=16,height=16 ! videoconvert ! "
                          "x264enc ! h264parse ! qtmux ! filesink location={location}"}
    with caplog.at_level(logging.WARNING, logger="edge_fetal"):
        sink = VideoSink(tmp_path / "annotated.mp4", 25.0, pipelines=refuses)
        _write(sink, _frames())
    assert sink.encoder_used == "mp4v" and len(read_video(tmp_path / "annotated.mp4")) == 12
    assert "x264enc did not open or encoded nothing" in caplog.text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["annotated.mp4"], "no probe clip left behind"


def test_encoder_settings_are_checked_and_the_cli_offers_the_same_choices():
    with pytest.raises(ValueError, match="video encoder"):
        VideoSink("v.mp4", 25.0, encoder="nvenc")
    with pytest.raises(ValueError, match="video_encoder"):
        SinkConfig(video_encoder="gpu")
    for encoder in VIDEO_ENCODERS:
        assert _parser().parse_args(["stream", "--source", "0", "--video-encoder", encoder]).video_encoder == encoder
    with pytest.raises(SystemExit):
        _parser().parse_args(["stream", "--source", "0", "--video-encoder", "nvenc"])


def test_a_path_with_a_double_quote_is_refused_for_a_pipeline_and_recorded_on_the_cpu(read_video, tmp_path):
    assert gstreamer.quoted_location(tmp_path / "a b!c.mp4") == f'"{tmp_path}/a b!c.mp4"'
    with pytest.raises(ValueError, match="double quote"):
        gstreamer.quoted_location(tmp_path / 'a"b.mp4')
    folder = tmp_path / 'scan "7"'
    folder.mkdir()
    sink = VideoSink(folder / "annotated.mp4", 25.0, pipelines=STAND_IN)
    _write(sink, _frames())
    assert sink.encoder_used == "mp4v" and len(read_video(folder / "annotated.mp4")) == 12


@pytest.mark.gpu
@pytest.mark.skipif(not (gstreamer.on_jetson() and gstreamer.opencv_has_gstreamer()),
                    reason="needs a Jetson whose OpenCV has GStreamer (JetPack's)")
def test_on_a_jetson_the_recording_is_h264_from_its_hardware_encoder(read_video, tmp_path):
    sink = VideoSink(tmp_path / "annotated.mp4", 25.0)
    frames = _frames(30)
    _write(sink, frames)
    video = read_video(tmp_path / "annotated.mp4")
    assert len(video) == len(frames) and min(cv2.PSNR(a, b) for a, b in zip(frames, video)) > 25.0
    if sink.encoder_used != "nvv4l2h264enc":
        pytest.skip(f"the hardware encoder's pipeline did not open here (no NVENC?); "
                    f"{sink.encoder_used} wrote the file")


@needs_gstreamer
def test_a_gstreamer_encoder_writes_every_frame_to_a_readable_mp4_in_a_folder_with_spaces(read_video, tmp_path):
    folder = tmp_path / "scan 2026 ! day one"
    folder.mkdir()
    sink = VideoSink(folder / "annotated.mp4", 25.0, pipelines=STAND_IN)
    frames = _frames()
    _write(sink, frames)
    if sink.encoder_used != "x264enc":
        pytest.skip("GStreamer here has no x264enc (gstreamer1.0-plugins-ugly)")
    video = read_video(folder / "annotated.mp4")
    assert len(video) == len(frames)
    assert min(cv2.PSNR(a, b) for a, b in zip(frames, video)) > 25.0, "the recording shows the frames written"


def test_a_pipeline_from_a_file_ends_with_it_and_a_live_one_is_reconnected():
    from_file = open_source('filesrc location="/scans/sweep one.mp4" ! qtdemux ! h264parse ! nvv4l2decoder ! '
                            'nvvidconv ! video/x-raw,format=GRAY8 ! appsink')
    assert not from_file.live and "file" in from_file.description
    assert open_source("multifilesrc location=frame_%03d.png ! pngdec ! videoconvert ! appsink").live is False
    live = "rtspsrc location=rtsp://scanner/live latency=0 ! rtph264depay ! h264parse ! nvv4l2decoder ! appsink"
    assert open_source(live).live and open_source("v4l2src device=/dev/video0 ! videoconvert ! appsink").live


@needs_gstreamer
def test_a_gstreamer_pipeline_reading_a_file_delivers_its_grey_frames_then_ends(tmp_path):
    path = tmp_path / "scan one.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    for frame in _frames():
        writer.write(frame)
    writer.release()
    source = open_source(f"filesrc location={gstreamer.quoted_location(path)} ! avidemux ! jpegdec ! videoconvert ! "
                         "video/x-raw,format=BGRx ! appsink sync=false")
    images = [frame.image for frame in source.frames()]
    assert len(images) == 12 and all(image.shape == (120, 160) and image.dtype == np.uint8 for image in images)
    assert abs(int(images[-1].mean()) - int(cv2.cvtColor(_frames()[-1], cv2.COLOR_BGR2GRAY).mean())) <= 3


@needs_gstreamer
def test_a_live_gstreamer_source_delivering_grey_frames_is_read():
    source = open_source("videotestsrc pattern=ball ! video/x-raw,width=160,height=120 ! videoconvert ! "
                         "video/x-raw,format=BGRx ! appsink")
    stop = threading.Event()
    images = []
    for frame in source.frames(stop):
        images.append(frame.image)
        if len(images) == 5:
            stop.set()
    assert len(images) == 5 and all(image.shape == (120, 160) and image.dtype == np.uint8 for image in images)


def _first_grey(pipeline: str) -> np.ndarray:
    frames = open_source(pipeline).frames()
    try:
        return next(frames).image
    finally:
        frames.close()


@needs_gstreamer
def test_bgrx_from_a_yuv_picture_is_full_range_grey_where_gray8_is_its_video_range_luma():
    """Why the README's pipelines end in BGRx: white in a YUV picture is luma 235, black 16."""
    decoded = "videotestsrc num-buffers=3 pattern={} ! video/x-raw,format=I420,width=64,height=48 ! videoconvert ! "
    assert int(_first_grey(decoded.format("white") + "video/x-raw,format=GRAY8 ! appsink").mean()) == 235
    assert int(_first_grey(decoded.format("black") + "video/x-raw,format=GRAY8 ! appsink").mean()) == 16
    assert int(_first_grey(decoded.format("white") + "video/x-raw,format=BGRx ! appsink").mean()) >= 250
    assert int(_first_grey(decoded.format("black") + "video/x-raw,format=BGRx ! appsink").mean()) <= 2
