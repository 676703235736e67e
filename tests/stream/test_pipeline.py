"""The whole stream with a scripted backend: outputs, drops, failures, Ctrl-C, spacing, accuracy."""

from __future__ import annotations

import json
import os
import signal
import time
import threading

import cv2
import numpy as np
import pytest

from edge_fetal.calibration import PixelSpacing, letterbox
from edge_fetal.runtime.backend import PLANES, Backend, ModelOutputs
from edge_fetal.runtime.onnxruntime_backend import usable_cpus
from edge_fetal.stream.config import FusionConfig, SinkConfig, StreamConfig
from edge_fetal.stream.pipeline import StreamError, run_stream
from edge_fetal.stream.readers import ArrayReader, EndOfStream, RawFrame, Reader
from edge_fetal.stream.report import summary_lines
from edge_fetal.stream.sinks import OutputFolderError
from edge_fetal.stream.sources import FrameSource

SPACING = PixelSpacing(0.2, "test spacing")
FUSION = FusionConfig(enter_frames=3, leave_frames=3, min_frames=3, lock_frames=8)


def config(**kw) -> StreamConfig:
    return StreamConfig(fusion=FUSION, sinks=SinkConfig(report_interval_s=0.05), **kw)


def source_of(images, fps=None, spacing=SPACING) -> FrameSource:
    return FrameSource(ArrayReader(images, fps=fps, spacing=spacing))


def events(out_dir) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "events.jsonl").read_text().splitlines()]


def test_offline_file_run_processes_every_frame_and_writes_everything(tmp_path, grey_frames, fakes, read_video):
    backend = fakes.ScriptedBackend(fakes.head_then_abdomen(20))
    report = run_stream(source_of(grey_frames(32)), backend, config(), tmp_path)

    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["final"] and report["stopped_by"] == "end of source"
    stream = report["stream"]
    assert stream["frames_read"] == stream["frames_processed"] == 32
    assert stream["frames_dropped"] == 0 and stream["renders_dropped"] == 0 and stream["frames_failed"] == 0
    hc, ac = report["biometry"]["hc"], report["biometry"]["ac"]
    assert hc["unit"] == "mm" and hc["locked"] and hc["frames_used"] == 18  # head entered on its 3rd frame
    assert hc["value"] == pytest.approx(fakes.HEAD.perimeter_px * 0.2, rel=0.01)
    assert (tmp_path / hc["best_frame"]["image"]).is_file() and (tmp_path / ac["best_frame"]["image"]).is_file()
    assert report["ga"]["formula"] == "Hadlock 1984 (HC)" and report["efw"] is None
    assert report["calibration"]["source"] == "test spacing"
    for stage in ("grab_wait", "preprocess", "infer", "measure", "fuse", "sink", "draw", "video_write", "end_to_end"):
        assert report["latency_ms"][stage]["count"] > 0 and report["latency_ms"][stage]["p99_ms"] is not None

    lines = events(tmp_path)
    assert [e["frame"] for e in lines] == list(range(32))
    assert all(set(e["latency_ms"]) >= {"infer", "end_to_end"} for e in lines)
    for e in lines:  # per-frame values only inside their plane
        shown = {k for k, v in e["measurements"].items() if "value_mm" in v}
        assert shown <= ({"hc", "bpd", "ofd"} if e["stable_plane"] == "head" else {"ac"} if e["stable_plane"] == "abdomen" else set())
    assert "withheld" in lines[0]["measurements"]["hc"]  # head not established yet on frame 0

    video = read_video(tmp_path / "annotated.mp4")
    assert len(video) == 32 and video[0].shape[:2] == (240, 320)
    printed = "\n".join(summary_lines(report))
    assert "HC " in printed and "locked" in printed and "32 processed" in printed and "end of source" in printed
    # the CPU the run cost, for an engineer sizing a device: per frame, and cores kept busy
    assert stream["cpu_s"] > 0 and stream["cpu_ms_per_frame"] == pytest.approx(1000 * stream["cpu_s"] / 32, rel=0.01)
    assert 0 < stream["cores_busy"] <= 1.05 * usable_cpus()
    assert f"CPU: {stream['cpu_ms_per_frame']:.1f} ms a frame" in printed


def test_realtime_run_with_slow_inference_drops_stale_frames_and_counts_them(tmp_path, grey_frames, fakes):
    backend = fakes.ScriptedBackend(lambda i: "head", delay_s=0.03)
    report = run_stream(source_of(grey_frames(40), fps=200.0), backend, config(realtime=True), tmp_path)
    stream = report["stream"]
    assert stream["frames_dropped"] > 10
    assert stream["frames_read"] == stream["frames_processed"] + stream["frames_dropped"]
    assert report["latency_ms"]["end_to_end"]["p95_ms"] < 150  # bounded: a queue would reach ~1 s
    assert len(events(tmp_path)) == stream["frames_processed"]


def test_a_frame_failing_in_a_stage_is_counted_and_skipped(tmp_path, grey_frames, fakes):
    backend = fakes.ScriptedBackend(lambda i: "head", fail_on={4, 9})
    report = run_stream(source_of(grey_frames(12)), backend, config(), tmp_path)
    assert report["stream"]["frames_failed"] == 2 and report["stream"]["frames_processed"] == 10
    assert report["stream"]["problems"]["processing"]["RuntimeError"]["count"] == 2


def test_frames_failing_again_and_again_stop_the_run_with_a_final_report(tmp_path, grey_frames, fakes):
    backend = fakes.ScriptedBackend(lambda i: "head", fail_on=set(range(100)))
    with pytest.raises(StreamError, match="5 frames in a row failed"):
        run_stream(source_of(grey_frames(20)), backend, StreamConfig(max_consecutive_failures=5), tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["final"] and report["stopped_by"].startswith("error: StreamError")


class GarbageMidStream(Reader):
    description = "flaky capture"

    def __init__(self, images):
        self.items = [images[0], None, images[1], RuntimeError("usb glitch"), np.zeros((5, 0), np.uint8), images[2]]

    def read(self):
        if not self.items:
            raise EndOfStream
        item = self.items.pop(0)
        if isinstance(item, Exception):
            raise item
        return RawFrame(item)


def test_a_source_returning_garbage_mid_stream_is_reported_and_skipped(tmp_path, grey_frames, fakes):
    report = run_stream(FrameSource(GarbageMidStream(grey_frames(3))), fakes.ScriptedBackend(lambda i: "head"), config(), tmp_path)
    assert report["stream"]["frames_processed"] == 3 and report["stream"]["bad_reads"] == 3
    assert set(report["stream"]["problems"]["source"]) == {"no image (None)", "read raised RuntimeError", "empty frame"}
    assert report["stopped_by"] == "end of source"


def test_sigint_mid_stream_leaves_a_final_report_and_a_playable_video(tmp_path, grey_frames, fakes, read_video):
    backend = fakes.ScriptedBackend(lambda i: "head", delay_s=0.02)
    # Python's own handler, or SIG_IGN where the suite runs as a background job of a shell
    handler_before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        report = run_stream(source_of(grey_frames(400)), backend, config(), tmp_path)
    finally:
        timer.cancel()
    assert report["stopped_by"] == "interrupted" and 0 < report["stream"]["frames_processed"] < 400
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["final"] and on_disk["stopped_by"] == "interrupted"
    video = read_video(tmp_path / "annotated.mp4")
    assert len(video) == report["stream"]["frames_processed"] == report["stream"]["video_frames"]
    assert report["stream"]["video_encoder"] in ("mp4v", "nvv4l2h264enc")  # what wrote the file
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is put back


def test_max_frames_and_the_status_line(tmp_path, grey_frames, fakes):
    lines = []
    report = run_stream(source_of(grey_frames(30)), fakes.ScriptedBackend(lambda i: "head"), config(max_frames=10), tmp_path,
                        progress=lines.append)
    assert report["stream"]["frames_processed"] == 10 and report["stopped_by"] == "max frames"
    # frames already read or inferred when the run stopped are dropped, never lost from the count
    stream = report["stream"]
    assert stream["frames_read"] == stream["frames_processed"] + stream["frames_dropped"] + stream["frames_failed"]
    assert lines and lines[-1].startswith("frames 10 |") and "HC " in lines[-1] and "AC -" in lines[-1]


def test_without_spacing_lengths_are_in_px_and_the_report_says_so(tmp_path, grey_frames, fakes):
    report = run_stream(source_of(grey_frames(10), spacing=None), fakes.ScriptedBackend(lambda i: "head"), config(), tmp_path)
    assert report["biometry"]["hc"]["unit"] == "px" and report["ga"] is None
    assert report["calibration"]["source"].startswith("none")
    assert all("value_mm" not in m for e in events(tmp_path) for m in e["measurements"].values())


def test_pixel_spacing_option_overrides_the_source(tmp_path, grey_frames, fakes):
    cfg = StreamConfig(fusion=FUSION, pixel_spacing=PixelSpacing(0.1, "command line --pixel-spacing"))
    report = run_stream(source_of(grey_frames(10)), fakes.ScriptedBackend(lambda i: "head"), cfg, tmp_path)
    assert report["biometry"]["hc"]["value"] == pytest.approx(fakes.HEAD.perimeter_px * 0.1, rel=0.01)
    assert report["calibration"]["source"] == "command line --pixel-spacing"


def test_inference_runs_on_the_next_frame_while_this_one_is_measured(tmp_path, grey_frames, fakes, monkeypatch):
    """The model and the geometry overlap: while `finish` works on frame N, `infer` has begun N+1."""
    from edge_fetal.stream import stages

    overlapped, inferring = [], threading.Event()
    original_infer, original_finish = stages.FrameProcessor.infer, stages.FrameProcessor.finish

    def infer(self, frame, grab_wait_ms):
        inferring.set()
        return original_infer(self, frame, grab_wait_ms)

    def finish(self, inferred, fps):
        inferring.clear()
        time.sleep(0.02)  # a slow measurement: the model must not wait for it
        overlapped.append(inferring.is_set())
        return original_finish(self, inferred, fps)

    monkeypatch.setattr(stages.FrameProcessor, "infer", infer)
    monkeypatch.setattr(stages.FrameProcessor, "finish", finish)
    report = run_stream(source_of(grey_frames(12)), fakes.ScriptedBackend(lambda i: "head"), config(), tmp_path)
    assert report["stream"]["frames_processed"] == 12
    assert sum(overlapped[:-1]) >= 9  # every frame but the last had the next one in the model meanwhile


class TruthBackend(Backend):
    """Returns each simulated frame's true mask and plane, in order: the stream's own error only."""

    name = "truth"

    def __init__(self, sim_frames):
        self.sim_frames, self.calls = sim_frames, 0

    @property
    def input_size(self) -> int:
        return 256

    def infer(self, batch):
        sim = self.sim_frames[self.calls]
        self.calls += 1
        mapping = letterbox(sim.mask.shape, 256)
        labels = mapping.to_model(sim.mask)  # nearest-free: the mask is piecewise constant
        logits = np.zeros((1, 4), np.float32)
        logits[0, PLANES.index(sim.truth.plane)] = 6.0
        return ModelOutputs(labels[None].astype(np.uint8), logits)


def test_simulated_sweep_fused_hc_matches_the_truth(tmp_path):
    from edge_fetal.data.simulator import render_sweep

    sim = list(render_sweep(11, [("head", 10)]))
    images = [f.image for f in sim]
    truths = [f.truth for f in sim]
    source = FrameSource(ArrayReader(images, spacing=PixelSpacing(sim[0].truth.mm_per_px, "simulator truth"), truths=truths))
    report = run_stream(source, TruthBackend(sim), StreamConfig(fusion=FUSION, sinks=SinkConfig(video=False)), tmp_path)
    true_hc = float(np.median([t.hc_mm for t in truths[2:]]))
    assert report["biometry"]["hc"]["value"] == pytest.approx(true_hc, rel=0.02)
    assert not (tmp_path / "annotated.mp4").exists()


class FrameNumberBackend(Backend):
    """Reads which frame it was given from the pixels (frame i is filled with grey 10 + i), takes an
    uneven time (or `delay_s(frame)`), and answers that frame's scripted plane: calls may overlap and
    finish out of order. `finished` lists the frames in the order their calls returned."""

    name = "frame-number"
    parallel_calls = True

    def __init__(self, script, fakes, delay_s=lambda frame: 0.002 + 0.008 * ((frame * 7) % 5) / 4):
        self.script, self.inner, self.delay_s = script, fakes.ScriptedBackend(script), delay_s
        self.active = self.most_active = 0
        self.finished: list[int] = []
        self.opencv_threads: set[int] = set()
        self.lock = threading.Lock()

    @property
    def input_size(self) -> int:
        return self.inner.input_size

    def infer(self, batch):
        frame = int(round(float(batch[0, 0, batch.shape[2] // 2, batch.shape[3] // 2]) * 255)) - 10
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.opencv_threads.add(cv2.getNumThreads())
        time.sleep(self.delay_s(frame))  # uneven: a later frame can finish first
        with self.lock:
            self.active -= 1
            self.finished.append(frame)
        plane = self.script(frame)
        logits = np.zeros((1, 4), np.float32)
        logits[0, PLANES.index(plane)] = self.inner.margin
        return ModelOutputs(self.inner._labels[plane][None], logits)


def test_offline_workers_infer_side_by_side_and_results_stay_in_frame_order(tmp_path, fakes):
    images = [np.full(fakes.SOURCE_HW, 10 + i, np.uint8) for i in range(40)]
    script = fakes.head_then_abdomen(20)
    backend = FrameNumberBackend(script, fakes)
    report = run_stream(source_of(images), backend, config(inference_workers=2), tmp_path)

    assert backend.most_active == 2, "the two workers never ran the model at the same time"
    stream = report["stream"]
    assert stream["frames_read"] == stream["frames_processed"] == 40 and stream["frames_dropped"] == 0
    lines = events(tmp_path)
    assert [e["frame"] for e in lines] == list(range(40))
    assert [e["plane"] for e in lines] == [script(i) for i in range(40)]
    assert report["biometry"]["hc"]["locked"] and report["biometry"]["ac"]["value"] is not None


def test_a_slow_frame_does_not_hold_up_the_other_worker_and_waiting_results_stay_bounded(tmp_path, fakes):
    images = [np.full(fakes.SOURCE_HW, 10 + i, np.uint8) for i in range(12)]
    backend = FrameNumberBackend(lambda i: "head", fakes, delay_s=lambda frame: 0.4 if frame == 0 else 0.005)
    report = run_stream(source_of(images), backend, config(inference_workers=2), tmp_path)

    ahead = backend.finished.index(0)  # frames inferred while frame 0 was still in the model
    # The other worker goes on with frames 1, 2, 3; it holds frame 3 until the consumer has taken
    # frame 0, as at most 2 results (one per worker) may wait ahead of it.
    assert ahead == 3
    assert [e["frame"] for e in events(tmp_path)] == list(range(12))
    assert report["stream"]["frames_processed"] == 12


def test_opencv_runs_single_threaded_only_while_workers_share_the_cores(tmp_path, fakes):
    images = [np.full(fakes.SOURCE_HW, 10 + i, np.uint8) for i in range(8)]
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        parallel = FrameNumberBackend(lambda i: "head", fakes)
        run_stream(source_of(images), parallel, config(inference_workers=2), tmp_path / "two")
        single = FrameNumberBackend(lambda i: "head", fakes)
        run_stream(source_of(images), single, config(inference_workers=1), tmp_path / "one")
        assert parallel.opencv_threads == {1} and single.opencv_threads == {2}
        assert cv2.getNumThreads() == 2  # restored after the run
    finally:
        cv2.setNumThreads(before)


def test_a_backend_without_parallel_calls_gets_one_call_at_a_time(tmp_path, fakes):
    images = [np.full(fakes.SOURCE_HW, 10 + i, np.uint8) for i in range(12)]
    backend = FrameNumberBackend(lambda i: "head", fakes)
    backend.parallel_calls = False
    report = run_stream(source_of(images), backend, config(inference_workers=2), tmp_path)
    assert backend.most_active == 1 and report["stream"]["frames_processed"] == 12


def test_stopping_a_multi_worker_run_counts_every_frame_once(tmp_path, fakes):
    images = [np.full(fakes.SOURCE_HW, 10 + (i % 200), np.uint8) for i in range(400)]
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    report = run_stream(source_of(images), FrameNumberBackend(lambda i: "head", fakes), config(inference_workers=2),
                        tmp_path, stop=stop)
    stream = report["stream"]
    assert report["stopped_by"] == "stop requested" and stream["frames_processed"] < 400
    assert stream["frames_read"] == stream["frames_processed"] + stream["frames_dropped"] + stream["frames_failed"]


def test_inference_plan_live_for_latency_offline_for_throughput():
    from edge_fetal.stream.config import inference_plan

    live, offline = inference_plan(live=True, cores=4), inference_plan(live=False, cores=4)
    assert (live.workers, live.threads) == (1, 4)
    assert (offline.workers, offline.threads) == (4, 1)
    chosen = inference_plan(live=False, cores=4, workers=2)
    assert (chosen.workers, chosen.threads) == (2, 2)
    big = inference_plan(live=False, cores=32)
    StreamConfig(inference_workers=big.workers)  # a big server still gets a valid configuration
    assert (big.workers, big.threads) == (8, 4)


def test_dicom_sr_is_written_at_the_end_and_a_failing_write_loses_nothing(tmp_path, grey_frames, fakes, monkeypatch):
    sr_config = StreamConfig(fusion=FUSION, sinks=SinkConfig(report_interval_s=0.05, dicom_sr=True))
    report = run_stream(source_of(grey_frames(32)), fakes.ScriptedBackend(fakes.head_then_abdomen(20)), sr_config,
                        tmp_path / "ok")
    assert report["dicom_sr"]["file"] == "report_sr.dcm" and (tmp_path / "ok" / "report_sr.dcm").is_file()
    assert {"hc", "ac"} <= set(report["dicom_sr"]["reported"])

    from edge_fetal.stream import dicom_sr

    def refuse(*_args, **_kwargs):
        raise dicom_sr.StructuredReportError("cannot write the DICOM SR report_sr.dcm: disk full")

    monkeypatch.setattr(dicom_sr, "write_structured_report", refuse)
    report = run_stream(source_of(grey_frames(32)), fakes.ScriptedBackend(fakes.head_then_abdomen(20)), sr_config,
                        tmp_path / "full")
    on_disk = json.loads((tmp_path / "full" / "report.json").read_text())
    assert on_disk["dicom_sr"] == {"file": None, "error": "cannot write the DICOM SR report_sr.dcm: disk full"}
    assert on_disk["biometry"]["hc"]["locked"] and len(events(tmp_path / "full")) == 32
    assert "DICOM SR not written: cannot write" in "\n".join(summary_lines(report))


def test_live_frames_are_measured_on_the_inference_thread_with_the_same_results(tmp_path, grey_frames, fakes, monkeypatch):
    """Live, nothing is left to overlap, so the inference thread finishes its own frame (no hand-off
    before the result); offline the main thread does. Same frames in, same fused figures out."""
    from edge_fetal.stream import stages

    finished_on = []
    original_finish = stages.FrameProcessor.finish

    def finish(self, inferred, fps):
        finished_on.append(threading.current_thread().name)
        return original_finish(self, inferred, fps)

    monkeypatch.setattr(stages.FrameProcessor, "finish", finish)
    backend = fakes.ScriptedBackend(lambda i: "head", delay_s=0.002)
    live = run_stream(source_of(grey_frames(20), fps=50.0), backend, config(realtime=True), tmp_path / "live")
    assert live["stream"]["frames_dropped"] == 0 and live["stream"]["frames_processed"] == 20
    assert set(finished_on) == {"edge-fetal-inference-0"}
    finished_on.clear()
    offline = run_stream(source_of(grey_frames(20)), backend, config(), tmp_path / "offline")
    assert set(finished_on) == {threading.main_thread().name}
    figures = lambda report: {name: (e["value"], e["spread_sd"], e["locked"], e["frames_used"])  # noqa: E731
                              for name, e in report["biometry"].items()}
    assert figures(live) == figures(offline) and "hc" in figures(live)


class ClosingReader(ArrayReader):
    """An in-memory source that remembers being closed, as a camera must be released."""

    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_an_earlier_run_in_the_output_folder_is_refused_and_left_as_it_was(tmp_path, grey_frames, fakes):
    run_stream(source_of(grey_frames(16)), fakes.ScriptedBackend(fakes.head_then_abdomen(8)), config(), tmp_path)
    earlier = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert {"report.json", "events.jsonl", "annotated.mp4", "best_hc.png", "best_ac.png"} <= set(earlier)

    reader = ClosingReader(grey_frames(16), spacing=SPACING)
    with pytest.raises(OutputFolderError, match="--overwrite") as refused:
        run_stream(FrameSource(reader), fakes.ScriptedBackend(fakes.head_then_abdomen(16)), config(), tmp_path)

    assert "report.json" in str(refused.value) and "best_ac.png" in str(refused.value)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == earlier
    assert reader.closed, "the source is released when the run is refused"


def test_replacing_an_earlier_run_leaves_none_of_its_files_beside_the_new_report(tmp_path, grey_frames, fakes):
    run_stream(source_of(grey_frames(16)), fakes.ScriptedBackend(fakes.head_then_abdomen(8)), config(), tmp_path)
    assert (tmp_path / "best_ac.png").is_file()
    (tmp_path / "notes.txt").write_text("the sonographer's own notes")

    report = run_stream(source_of(grey_frames(12)), fakes.ScriptedBackend(fakes.head_then_abdomen(12)), config(),
                        tmp_path, replace_previous=True)

    assert "ac" not in report["biometry"]
    assert not (tmp_path / "best_ac.png").exists(), "an abdomen image of the earlier scan would sit beside this report"
    assert (tmp_path / "best_hc.png").is_file() and len(events(tmp_path)) == 12
    assert (tmp_path / "notes.txt").read_text() == "the sonographer's own notes", "only run outputs are replaced"
