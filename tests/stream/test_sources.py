"""Sources: grey conversion, bad reads mid-stream, reconnects, DICOM cine, folders, video files, ROI."""

from __future__ import annotations

import logging
import os
import threading
import time

import cv2
import numpy as np
import pytest

from edge_fetal.stream.config import SourceConfig
from edge_fetal.stream.readers import ArrayReader, EndOfStream, RawFrame, Reader, SourceError
from edge_fetal.stream.roi import Roi, RoiError, detect_fan, parse_roi
from edge_fetal.stream.sources import FrameSource, open_source, to_grey_u8

GOOD = np.full((20, 24), 100, np.uint8)


# --- to_grey_u8 -------------------------------------------------------------------------------

def test_grey_conversion_of_bgr_bgra_rgb_and_ybr():
    grey = np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)
    bgr = np.dstack([grey] * 3)
    assert np.array_equal(to_grey_u8(bgr), grey)  # B = G = R: grey is unchanged
    assert np.array_equal(to_grey_u8(np.dstack([grey] * 3 + [np.full_like(grey, 255)])), grey)
    blue = np.zeros((10, 10, 3), np.uint8)
    blue[..., 0] = 200
    assert to_grey_u8(blue)[0, 0] == round(0.114 * 200)  # BGR order by default
    assert to_grey_u8(blue, colour="rgb")[0, 0] == round(0.299 * 200)
    assert np.array_equal(to_grey_u8(np.dstack([grey, grey // 2, grey // 3]), colour="ybr"), grey)
    out = to_grey_u8(grey[..., None])
    assert out.shape == grey.shape and out.dtype == np.uint8 and out.flags.c_contiguous


def test_grey_conversion_of_16_bit_frames():
    full = np.array([[0, 257, 65535]] * 8, np.uint16).repeat(4, axis=1)
    assert to_grey_u8(full)[0].tolist()[::4] == [0, 1, 255]
    twelve_bit = np.array([[0, 16, 4095, 5000]] * 8, np.uint16).repeat(4, axis=1)
    assert to_grey_u8(twelve_bit, bits_stored=12)[0].tolist()[::4] == [0, 1, 255, 255]


def test_packed_yuyv_reads_the_grey_that_opencv_makes_of_it_through_bgr():
    """YUYV luma is video range (black 16, white 235): taken as it is, a frame would be up to 20
    grey levels off the one the same picture gives through OpenCV's BGR conversion."""
    y = np.random.default_rng(1).integers(16, 236, (16, 32), dtype=np.uint8)
    yuyv = np.dstack([y, np.full_like(y, 128)])  # what a V4L2 YUYV buffer looks like as HxWx2 (no colour)
    through_bgr = cv2.cvtColor(cv2.cvtColor(yuyv, cv2.COLOR_YUV2BGR_YUY2), cv2.COLOR_BGR2GRAY)
    assert np.abs(to_grey_u8(yuyv).astype(int) - through_bgr).max() <= 1
    black_and_white = np.dstack([np.array([[16, 235]] * 8, np.uint8).repeat(4, axis=1), np.full((8, 8), 128, np.uint8)])
    assert to_grey_u8(black_and_white)[0].tolist()[::4] == [0, 255]


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 10), np.float64), "dtype float64"),
    (np.zeros((0, 10), np.uint8), "empty"),
    (np.zeros((10, 10, 5), np.uint8), "shape"),
    (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
])
def test_grey_conversion_refuses_garbage(bad, match):
    with pytest.raises(ValueError, match=match):
        to_grey_u8(bad)


# --- bad reads mid-stream ---------------------------------------------------------------------

class FlakyReader(Reader):
    """Plays a script: arrays are returned, exceptions raised, then the end of the file."""

    description = "flaky file"

    def __init__(self, script, live: bool = False, fail_opens: int = 0) -> None:
        self.script, self.live, self.fail_opens, self.opens = list(script), live, fail_opens, 0

    def open(self) -> None:
        self.opens += 1
        if 1 < self.opens <= 1 + self.fail_opens:
            raise ConnectionError("device busy")

    def read(self) -> RawFrame:
        if not self.script:
            raise EndOfStream
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return RawFrame(item)


def test_garbage_and_failing_reads_are_counted_logged_once_per_kind_and_skipped(caplog):
    script = [GOOD, None, np.zeros((20, 24), np.float64), np.zeros((0, 3), np.uint8), RuntimeError("decoder hiccup"),
              GOOD, None, RuntimeError("again"), GOOD]
    source = FrameSource(FlakyReader(script))
    with caplog.at_level(logging.WARNING, logger="edge_fetal.stream"):
        frames = list(source.frames())
    assert [f.index for f in frames] == [0, 5, 8]  # indices keep the source position
    assert source.frames_read == 3 and source.problems.total == 6
    counts = source.problems.counts
    assert counts["no image (None)"] == 2 and counts["read raised RuntimeError"] == 2
    assert counts["unsupported dtype float64"] == 1 and counts["empty frame"] == 1
    assert sum("no image (None)" in r.message for r in caplog.records) == 1  # logged once per kind


def test_a_file_that_keeps_failing_stops_with_a_clear_error():
    source = FrameSource(FlakyReader([RuntimeError("broken")] * 20), SourceConfig(max_consecutive_failures=5))
    with pytest.raises(SourceError, match="5 bad reads in a row"):
        list(source.frames())


def test_a_live_source_reconnects_with_back_off():
    script = [GOOD, ConnectionError("cable out"), GOOD, GOOD]
    reader = FlakyReader(script, live=True, fail_opens=2)
    source = FrameSource(reader, SourceConfig(reconnect_initial_s=0.01, reconnect_max_s=0.02))
    frames = list(source.frames())
    assert len(frames) == 3 and source.reconnects == 1 and reader.opens == 4  # first open, 2 failed, 1 good
    assert source.problems.counts["reconnect failed (ConnectionError)"] == 2


def test_back_off_doubles_up_to_its_cap_while_a_live_source_delivers_nothing(monkeypatch):
    import threading

    waits = []
    stop = threading.Event()
    monkeypatch.setattr(stop, "wait", lambda delay: waits.append(delay) or len(waits) >= 6)
    source = FrameSource(FlakyReader([ConnectionError("no signal")] * 10, live=True),
                         SourceConfig(reconnect_initial_s=0.5, reconnect_max_s=4.0))
    source._reconnect(stop)  # opens fine, then fails again: the wait keeps growing
    source._reconnect(stop)
    source._reconnect(stop)
    assert waits[:3] == [0.5, 1.0, 2.0]
    source.reader.fail_opens = 10
    source._reconnect(stop)
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


# --- DICOM cine -------------------------------------------------------------------------------

def test_dicom_cine_gives_frames_spacing_and_times(tmp_path, write_cine):
    frames = np.stack([np.full((30, 40), 10 * i, np.uint8) for i in range(4)])
    frames[:, 5, 7] = 250
    source = open_source(str(write_cine(tmp_path / "cine.dcm", frames)))
    got = list(source.frames())
    assert len(got) == 4 and source.fps == pytest.approx(25.0)
    assert all(np.array_equal(f.image, frames[i]) for i, f in enumerate(got))
    assert got[2].source_time == pytest.approx(0.08)
    assert got[0].spacing.mm_per_px == pytest.approx(0.2)
    assert "SequenceOfUltrasoundRegions" in got[0].spacing.source


def test_auto_roi_of_a_dicom_is_its_calibrated_region(tmp_path, write_cine):
    frames = np.zeros((2, 30, 40), np.uint8)
    path = write_cine(tmp_path / "region.dcm", frames, box=(5, 4, 34, 25))
    source = open_source(str(path), SourceConfig(roi="auto"))
    got = list(source.frames())
    assert source.roi == Roi(5, 4, 30, 22) and got[0].image.shape == (22, 30)


def test_dicom_rgb_and_ybr_cine_become_grey(tmp_path, write_cine):
    grey = np.random.default_rng(2).integers(0, 256, (3, 24, 32), dtype=np.uint8)
    rgb = np.stack([grey] * 3, axis=-1)
    got = list(open_source(str(write_cine(tmp_path / "rgb.dcm", rgb, "RGB"))).frames())
    assert all(np.array_equal(f.image, grey[i]) for i, f in enumerate(got))
    ybr = np.stack([grey, np.full_like(grey, 128), np.full_like(grey, 128)], axis=-1)  # neutral chroma
    got = list(open_source(str(write_cine(tmp_path / "ybr.dcm", ybr, "YBR_FULL"))).frames())
    assert all(np.abs(f.image.astype(int) - grey[i]).max() <= 1 for i, f in enumerate(got))


def test_dicom_16_bit_cine_becomes_8_bit(tmp_path, write_cine):
    frames = np.full((2, 20, 20), 65535, np.uint16)
    path = write_cine(tmp_path / "deep.dcm", frames)
    got = list(open_source(str(path)).frames())
    assert got[0].image.dtype == np.uint8 and got[0].image.max() == 255


def test_dicom_without_usable_calibration_has_no_spacing_and_says_why(tmp_path, write_cine):
    frames = np.zeros((2, 20, 20), np.uint8)
    path = write_cine(tmp_path / "bad.dcm", frames, delta_cm=-1.0)
    source = open_source(str(path))
    got = list(source.frames())
    assert got[0].spacing is None and "non-positive" in source.reader.calibration_note


# --- folders, videos, the simulator, source strings -------------------------------------------

def test_image_folder_is_read_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((12, 12), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(open_source(str(tmp_path)).frames())
    assert [int(f.image[0, 0]) for f in frames] == [1, 2, 10]


def test_video_file_ends_cleanly(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for i in range(7):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    source = open_source(str(path))
    frames = list(source.frames())
    assert len(frames) == 7 and frames[0].image.shape == (48, 64) and source.fps == pytest.approx(25.0)
    assert frames[3].source_time == pytest.approx(3 / 25.0, abs=1e-3)


def _transport_stream_by_frame(path, frames: int) -> list[bytes]:
    """An MPEG-TS clip (as an RTSP camera or encoder box would stream it), cut into one chunk of
    188-byte packets per frame, at the starts of the video stream's packets."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    packets = [data[i:i + 188] for i in range(0, len(data), 188)]
    pid_of = [((p[1] & 0x1F) << 8) | p[2] for p in packets]
    video = max(set(pid_of) - {0, 0x1FFF}, key=pid_of.count)  # the stream with the most packets
    chunks, chunk = [], b""
    for packet, pid in zip(packets, pid_of):
        if pid == video and packet[1] & 0x40 and chunk:  # a new picture starts here
            chunks.append(chunk)
            chunk = b""
        chunk += packet
    return chunks + [chunk]


def _frames_behind(read_frames, chunks, fifo) -> int:
    """Feed `chunks` one by one through a FIFO to `read_frames(path)` (a generator of frames) on
    its own thread; after each chunk, let the reader settle; how many chunks written it has not yet
    returned as frames, at the end. Fails, never hangs, when the reader stops reading."""
    os.mkfifo(fifo)
    returned = []

    def read_all():
        for _ in read_frames(str(fifo)):
            returned.append(1)

    threading.Thread(target=read_all, daemon=True).start()
    feed = _open_for_writing(fifo, deadline=time.monotonic() + 10.0)
    behind = None
    try:
        for written, chunk in enumerate(chunks, start=1):
            _write_all(feed, chunk, deadline=time.monotonic() + 10.0)
            seen, settled_at, deadline = -1, time.monotonic(), time.monotonic() + 3.0
            while time.monotonic() < min(deadline, settled_at + 0.15):
                if len(returned) != seen:
                    seen, settled_at = len(returned), time.monotonic()
                time.sleep(0.01)
            if written < len(chunks):  # the last chunk ends the stream: everything comes out
                behind = written - len(returned)
    finally:
        os.close(feed)
    return behind


def _open_for_writing(fifo, deadline: float) -> int:
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody has opened it for reading yet
            assert time.monotonic() < deadline, "the reader never opened the stream"
            time.sleep(0.01)


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # the pipe is full: the reader is behind
            assert time.monotonic() < deadline, "the reader stopped reading the stream"
            time.sleep(0.01)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a POSIX FIFO to play a live stream")
def test_a_live_stream_is_decoded_without_holding_frames_back(tmp_path):
    """FFmpeg's frame threads hold each decoded picture back one frame per thread beyond the first;
    a live reader decodes on one thread, so its frames reach the engine as soon as they can."""
    from edge_fetal.stream.readers import EndOfStream, VideoCaptureReader

    chunks = _transport_stream_by_frame(tmp_path / "clip.ts", frames=10)

    def live_reader(path):
        reader = VideoCaptureReader(path, cv2.CAP_FFMPEG, live=True, description="stream")
        reader.open()
        try:
            while True:
                yield reader.read()
        except (ConnectionError, EndOfStream):  # a live reader's end of stream
            reader.close()

    def two_decoding_threads(path):
        capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 2])
        while capture.read()[0]:
            yield
        capture.release()

    live = _frames_behind(live_reader, chunks, tmp_path / "live.fifo")
    threaded = _frames_behind(two_decoding_threads, chunks, tmp_path / "threaded.fifo")
    assert live == threaded - 1


def test_a_stalled_network_stream_fails_a_read_within_seconds_not_opencvs_thirty(tmp_path):
    """A scanner's stream that stops sending (cable, encoder box) must end the read soon, so that
    the source reconnects and the sonographer is not left with a frozen overlay."""
    import socket

    from edge_fetal.stream.readers import VideoCaptureReader

    chunks = _transport_stream_by_frame(tmp_path / "clip.ts", frames=6)
    server = socket.create_server(("127.0.0.1", 0))
    stalled = threading.Event()

    def serve_then_stall():
        connection, _ = server.accept()
        connection.sendall(b"".join(chunks))
        stalled.wait(20)  # the connection stays open; nothing more is sent
        connection.close()

    threading.Thread(target=serve_then_stall, daemon=True).start()
    reader = VideoCaptureReader(f"tcp://127.0.0.1:{server.getsockname()[1]}", cv2.CAP_FFMPEG, live=True,
                                description="stream")
    outcome = []

    def read_until_failure():
        reader.open()
        try:
            while True:
                reader.read()
                outcome.append(time.monotonic())
        except ConnectionError as error:
            outcome.append(error)

    started = time.monotonic()
    worker = threading.Thread(target=read_until_failure, daemon=True)
    worker.start()
    worker.join(VideoCaptureReader.live_read_timeout_ms / 1000 + 5.0)
    stalled.set()
    server.close()
    assert outcome and isinstance(outcome[-1], ConnectionError), "the read still hangs on a stalled stream"
    assert len(outcome) > 1  # frames came before the stall
    assert time.monotonic() - started < VideoCaptureReader.live_read_timeout_ms / 1000 + 5.0
    reader.close()


def test_an_rtsp_pipeline_left_with_its_two_second_jitter_buffer_is_warned_about(caplog):
    from edge_fetal.stream.gstreamer import warn_if_rtsp_buffers

    buffered = "rtspsrc location=rtsp://scanner/live ! rtph264depay ! h264parse ! avdec_h264 ! appsink"
    with caplog.at_level(logging.WARNING, logger="edge_fetal"):
        source = open_source(buffered)
    assert source.live and "hold every frame back up to 2000 ms" in caplog.text and "latency=0" in caplog.text
    assert not warn_if_rtsp_buffers(buffered.replace("/live", "/live latency=0"))
    assert not warn_if_rtsp_buffers("v4l2src device=/dev/video0 ! videoconvert ! appsink")


def test_a_pipeline_handing_over_gray8_is_warned_about_and_bgrx_is_not(caplog):
    from edge_fetal.stream.gstreamer import warn_if_video_range_grey

    grey = "rtspsrc location=rtsp://scanner/live latency=0 ! rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv ! " \
           "video/x-raw,format=GRAY8 ! appsink"
    with caplog.at_level(logging.WARNING, logger="edge_fetal"):
        open_source(grey)
    assert "video-range luma (16-235)" in caplog.text and "format=BGRx" in caplog.text
    assert warn_if_video_range_grey("v4l2src ! video/x-raw, format=(string)GRAY8 ! appsink")
    assert not warn_if_video_range_grey(grey.replace("GRAY8", "BGRx"))


def test_sim_source_carries_truth_and_spacing():
    source = open_source("sim:3", SourceConfig(sim_segments=(("head", 2),)))
    frames = list(source.frames())
    assert len(frames) == 2 and frames[0].truth.plane == "head"
    assert frames[0].spacing.mm_per_px == pytest.approx(frames[0].truth.mm_per_px)


def test_source_strings_are_understood_or_refused_clearly(tmp_path):
    assert open_source("0").live and open_source("rtsp://user:pw@10.0.0.5/live").live
    assert "pw" not in open_source("rtsp://user:pw@10.0.0.5/live").description
    with pytest.raises(SourceError, match="not a file or folder that exists"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match="seed"):
        open_source("sim:abc")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "empty"))
    if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        with pytest.raises(SourceError, match="GStreamer"):
            open_source("videotestsrc ! appsink").open()


# --- ROI ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, match", [
    ("1,2,3", "four integers"), ("a,b,c,d", "whole numbers"), ("0,0,0,10", "width, height >= 1"),
    ("-1,0,10,10", "x, y >= 0"), ("", "four integers"),
])
def test_roi_parsing_errors_are_clear(text, match):
    with pytest.raises(RoiError, match=match):
        parse_roi(text)


def test_roi_crop_and_a_box_that_does_not_fit():
    assert parse_roi(" 2, 3 ,10,5 ") == Roi(2, 3, 10, 5) and parse_roi("AUTO") == "auto"
    source = FrameSource(ArrayReader([np.zeros((40, 50), np.uint8)]), SourceConfig(roi=Roi(10, 5, 20, 30)))
    assert list(source.frames())[0].image.shape == (30, 20)
    source = FrameSource(ArrayReader([np.zeros((40, 50), np.uint8)]), SourceConfig(roi=Roi(40, 0, 20, 10)))
    with pytest.raises(RoiError, match="reaches past the 50x40 frame"):
        list(source.frames())


def screen_with_fan(rng) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 1280x720 'scanner screen': a speckled fan with dark fluid inside, text, a grey-scale bar."""
    screen = np.zeros((720, 1280), np.uint8)
    fan = np.zeros_like(screen)
    cv2.ellipse(fan, (640, 80), (520, 520), 0, 55, 125, 255, -1)  # sector, apex at the top
    ys, xs = np.nonzero(fan)
    speckle = rng.gamma(2.0, 40.0, screen.shape).clip(0, 255).astype(np.uint8)
    screen[fan > 0] = np.maximum(speckle[fan > 0], 15)
    cv2.ellipse(screen, (640, 400), (90, 60), 0, 0, 360, 3, -1)  # amniotic fluid: dark inside the fan
    cv2.putText(screen, "GE  Voluson  MI 0.9 TIb 0.3  C1-5", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 255, 2)
    cv2.putText(screen, "HC 265.1 mm", (1000, 650), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    screen[150:400, 1240:1247] = np.linspace(255, 0, 250, dtype=np.uint8)[:, None]
    return screen, (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def test_fan_detection_finds_the_image_on_a_scanner_screen():
    screen, (x, y, w, h) = screen_with_fan(np.random.default_rng(4))
    roi = detect_fan(screen)
    assert roi is not None
    assert abs(roi.x - x) <= 8 and abs(roi.y - y) <= 8
    assert abs(roi.x + roi.w - (x + w)) <= 8 and abs(roi.y + roi.h - (y + h)) <= 8
    assert detect_fan(np.zeros((100, 100), np.uint8)) is None


def test_auto_roi_is_found_once_and_kept():
    screen, _ = screen_with_fan(np.random.default_rng(5))
    shifted = np.roll(screen, 40, axis=1)  # later frames: the box must not follow
    source = FrameSource(ArrayReader([screen, shifted]), SourceConfig(roi="auto"))
    frames = list(source.frames())
    assert source.roi is not None and frames[0].image.shape == frames[1].image.shape == (source.roi.h, source.roi.w)
