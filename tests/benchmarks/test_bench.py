"""The benchmark harness: the shape of its result (never its timings) and the naive baseline's correctness."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge_fetal.bench.schema import latency_stats

STATS = ("iterations", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "frames_per_s")


def test_latency_stats_are_ordered_and_empty_safe():
    stats = latency_stats([5.0, 1.0, 2.0, 30.0, 3.0], batch=2)
    assert stats["iterations"] == 5 and stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert stats["frames_per_s"] == pytest.approx(2 * 1e3 / 8.2, rel=1e-3)
    assert latency_stats([])["p99_ms"] is None


@pytest.fixture(scope="module")
def quick_run(tiny_onnx, tiny_checkpoint, tmp_path_factory):
    """One --quick run on the tiny model (64 px), with small scaling axes so it takes seconds."""
    pytest.importorskip("torch")
    from edge_fetal.bench import BenchOptions, run_benchmark

    out = tmp_path_factory.mktemp("bench_results")
    options = BenchOptions(model=tiny_onnx, checkpoint=tiny_checkpoint, out_dir=out, quick=True, threads=1,
                           rounds=2, e2e_rounds=2, iterations=1, real_frames=1, sim_per_plane=1, sizes=(64, 96), batches=(1, 2),
                           streams=(1, 2), peak_n=128, show_progress=False)
    return run_benchmark(options, log=lambda _line: None), out


def test_quick_run_document_has_every_section(quick_run):
    doc, _ = quick_run
    for key in ("schema", "tool", "date", "machine", "model", "input", "rows", "settings", "peak", "scaling",
                "end_to_end", "memory", "notes", "files"):
        assert key in doc, key
    for key in ("cpu", "cpu_identity", "cpuidle_driver", "cpu_flags", "physical_cores", "onnxruntime", "torch",
                "opencv", "numpy", "python"):
        assert key in doc["machine"], key
    assert doc["model"]["input_size"] == 64 and doc["model"]["gflop_per_frame"] > 0
    assert doc["peak"]["gflops"] > 0 and doc["memory"]["peak_rss_mib"] > 0
    engine = doc["memory"]["engine_process"]
    assert engine["peak_rss_mib"] > 0 and engine["torch_imported"] is False  # the engine runs without torch


def test_rows_have_ordered_percentiles_and_gflops(quick_run):
    doc, _ = quick_run
    names = {row["variant"] for row in doc["rows"] if row["group"] == "model"}
    assert {"ort-cpu-fp32", "ort-cpu-int8", "torch-cpu-fp32"} <= names
    for row in doc["rows"]:
        for key in STATS + ("runtime", "precision", "layout", "kind", "batch", "input_size", "gflop_per_frame"):
            assert key in row, (row["variant"], key)
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row["variant"]
        assert row["gflops_achieved"] == pytest.approx(row["gflop_per_frame"] * row["frames_per_s"], rel=1e-2)
        assert row["peak_fraction"] == pytest.approx(row["gflops_achieved"] / doc["peak"]["gflops"], rel=1e-2)


def test_scaling_axes_and_end_to_end_ratios(quick_run):
    doc, _ = quick_run
    scaling = doc["scaling"]
    assert [p["input_size"] for p in scaling["input_size"]] == [64, 96]
    assert [p["batch"] for p in scaling["batch"]] == [1, 2]
    assert [p["streams"] for p in scaling["streams"]] == [1, 2]
    assert scaling["input_size"][1]["gflop_per_frame"] > scaling["input_size"][0]["gflop_per_frame"]
    e2e = doc["end_to_end"]
    pipeline, naive, ratio = e2e["pipeline"], e2e["naive"], e2e["ratio"]
    assert e2e["backend"] in {row["variant"] for row in doc["rows"]}
    for part in (pipeline, naive):
        assert part["capture_to_result"]["iterations"] == e2e["frames_per_run"] * e2e["rounds"]
        c2r = part["capture_to_result"]
        assert c2r["p50_ms"] <= c2r["p95_ms"] <= c2r["p99_ms"]
    assert ratio["throughput"] == pytest.approx(pipeline["frames_per_s"] / naive["frames_per_s"], abs=0.01)
    assert ratio["p99_capture_to_result"] == pytest.approx(
        naive["capture_to_result"]["p99_ms"] / pipeline["capture_to_result"]["p99_ms"], abs=0.01)


def test_offline_line_also_streams_a_recorded_scan_from_a_file(quick_run):
    from edge_fetal.bench.harness import QUICK_SCAN

    doc, out = quick_run
    e2e = doc["end_to_end"]
    from_file = e2e["offline_file"]
    assert from_file["frames_per_run"] == sum(n for _, n in QUICK_SCAN)  # every frame of the file, none dropped
    assert from_file["runs"] == e2e["rounds"] and from_file["frames_per_s"] > 0
    assert from_file["processing"]["iterations"] == from_file["frames_per_run"] * e2e["rounds"]
    assert from_file["inference_workers"] == e2e["pipeline"]["inference_workers"]
    assert "simulated sweep of 12 frames" in from_file["source"]
    assert "decoding included" in (out / "latest.md").read_text()


def test_each_end_to_end_line_reports_its_spread_from_round_to_round(quick_run):
    doc, out = quick_run
    e2e = doc["end_to_end"]
    for part in (e2e["pipeline"], e2e["offline_file"]):
        by_run = part["frames_per_s_by_run"]
        assert len(by_run) == e2e["rounds"]
        assert min(by_run) - 0.01 <= part["frames_per_s"] <= max(by_run) + 0.01  # the whole lies within its runs
    live = e2e["live"]
    assert len(live["capture_to_result_p50_by_run"]) == len(live["capture_to_result_p99_by_run"]) == e2e["rounds"]
    assert all(p50 <= p99 for p50, p99 in zip(live["capture_to_result_p50_by_run"], live["capture_to_result_p99_by_run"]))
    assert min(live["capture_to_result_p50_by_run"]) <= live["capture_to_result"]["max_ms"]
    assert "Run to run (2 rounds, lowest–highest): offline from memory" in (out / "latest.md").read_text()


def test_each_pipeline_line_reports_its_cpu_per_frame_and_busy_cores(quick_run):
    """What tells a reader whether frames/s is bound by the CPU: CPU per frame and the cores it kept busy."""
    doc, out = quick_run
    e2e = doc["end_to_end"]
    usable = doc["machine"]["usable_cpus"]
    for part in (e2e["pipeline"], e2e["offline_file"], e2e["live"]):
        assert part["cpu_ms_per_frame"] > 0
        assert 0 < part["cores_busy"] <= usable * 1.05  # a process cannot keep more CPUs busy than it may use
    for part in (e2e["pipeline"], e2e["offline_file"]):
        implied = 1000.0 * part["cores_busy"] / part["cpu_ms_per_frame"]
        assert implied == pytest.approx(part["frames_per_s"], rel=0.02)
    # paced at the live rate, the engine waits for frames: fewer cores busy than flat out from memory
    assert e2e["live"]["cores_busy"] < e2e["pipeline"]["cores_busy"]
    assert "CPU of the whole process per frame (cores kept busy on average): offline from memory" in (out / "latest.md").read_text()


def test_the_offline_lines_name_the_encoder_their_frames_per_s_include(quick_run):
    doc, out = quick_run
    e2e = doc["end_to_end"]
    assert e2e["pipeline"]["video_encoder"] == e2e["offline_file"]["video_encoder"]
    assert e2e["pipeline"]["video_encoder"] in ("mp4v", "nvv4l2h264enc")
    assert f"render + mp4 ({e2e['pipeline']['video_encoder']}) on its own thread" in (out / "latest.md").read_text()


def test_scan_video_is_a_moving_sweep_that_opencv_reads_back(tmp_path, read_video):
    from edge_fetal.bench.frames import write_scan_video

    path = tmp_path / "scan.mp4"
    count = write_scan_video(path, (("head", 3), ("femur", 2)))
    frames = read_video(path)
    assert count == len(frames) == 5
    assert frames[0].shape == (540, 800, 3)
    # the speckle changes from frame to frame, as on a probe: the decoder has new pixels every frame
    assert all(np.abs(a.astype(int) - b.astype(int)).mean() > 1.0 for a, b in zip(frames, frames[1:]))
    with pytest.raises(ValueError, match="no frames"):
        write_scan_video(tmp_path / "empty.mp4", (("head", 0),))


def test_without_an_mp4_writer_the_bench_notes_that_the_file_run_is_missing(tmp_path, monkeypatch):
    from edge_fetal.bench import frames, harness

    def cannot_write(path, segments=None):
        raise OSError(f"OpenCV cannot write an mp4 file at {path}")

    monkeypatch.setattr(frames, "write_scan_video", cannot_write)
    notes: list[str] = []
    assert harness._scan_file(tmp_path / "scan.mp4", quick=True, notes=notes) is None
    assert notes == [f"no offline run from a file: OpenCV cannot write an mp4 file at {tmp_path / 'scan.mp4'}"]
    monkeypatch.undo()
    scan = harness._scan_file(tmp_path / "scan.mp4", quick=True, notes=notes)
    assert scan.path == tmp_path / "scan.mp4" and "simulated sweep of 12 frames" in scan.description
    assert (tmp_path / "scan.mp4").stat().st_size > 0 and len(notes) == 1


def test_a_scan_given_with_scan_is_checked_before_the_run_and_then_used(tmp_path):
    from edge_fetal.bench.frames import write_scan_video
    from edge_fetal.bench.harness import _scan_file, check_scan
    from edge_fetal.errors import EdgeFetalError

    with pytest.raises(EdgeFetalError, match="no such file"):
        check_scan(tmp_path / "missing.mp4")
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video")
    with pytest.raises(EdgeFetalError, match="not a video file OpenCV can decode"):
        check_scan(not_a_video)
    recorded = tmp_path / "recorded.mp4"
    write_scan_video(recorded, (("head", 2),))
    check_scan(recorded)
    scan = _scan_file(tmp_path / "unused.mp4", quick=True, notes=[], given=recorded)
    assert scan.path == recorded and "given with --scan" in scan.description
    assert not (tmp_path / "unused.mp4").exists()  # nothing simulated is written when a scan is given


def test_files_json_markdown_png_and_latest(quick_run):
    doc, out = quick_run
    stem = doc["files"]["json"][: -len(".json")]
    assert json.loads((out / "latest.json").read_text())["rows"] == json.loads(open(stem + ".json").read())["rows"]
    markdown = (out / "latest.md").read_text()
    for row in doc["rows"]:
        if row["group"] == "model":
            assert f"| {row['variant']} |" in markdown
    assert "naive baseline" in markdown and "Concurrent streams" in markdown
    image = cv2.imread(str(out / "latest.png"))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600


# --- the naive baseline measures what the pipeline measures ---------------------------------------

def _ellipse_net():
    """A stand-in network whose head class is wherever the frame is bright, and whose plane is head."""
    torch = pytest.importorskip("torch")

    class EllipseNet(torch.nn.Module):
        size_multiple = 16

        def forward(self, image):
            head = (image - 0.5) * 20.0
            other = torch.full_like(image, -10.0)
            plane = torch.tensor([[6.0, 0.0, 0.0, 0.0]]).expand(image.shape[0], 4)
            return torch.cat([-head, head, other, other], dim=1), plane

    return EllipseNet().eval()


def test_naive_baseline_measures_the_same_hc_as_the_pipeline(tmp_path):
    from edge_fetal.biometry import Ellipse, rasterise_ellipse
    from edge_fetal.bench.end_to_end import run_pipeline
    from edge_fetal.bench.naive import run_naive
    from edge_fetal.runtime.analyse import analyse_frame
    from edge_fetal.runtime.torch_backend import TorchBackend

    truth, mm_per_px = Ellipse(170.0, 118.0, 72.0, 54.0, 20.0), 0.2
    frame = np.where(rasterise_ellipse((240, 320), truth), 220, 30).astype(np.uint8)
    truth_hc_mm = truth.perimeter_px * mm_per_px
    network = _ellipse_net()
    backend = TorchBackend.from_model(_ellipse_net(), 128, device="cpu")

    naive = run_naive([frame] * 2, [mm_per_px] * 2, network, 128, tmp_path / "naive.mp4")
    naive_hc = naive.measurements[-1].hc_mm
    analysed_hc = analyse_frame(frame, backend, mm_per_px).measurement.hc_mm
    streamed = run_pipeline([frame] * 12, [mm_per_px] * 12, backend, tmp_path / "pipeline")
    fused_hc = streamed["report"]["biometry"]["hc"]["value"]

    assert naive.planes == ["head", "head"] and naive_hc is not None
    assert naive_hc == pytest.approx(analysed_hc, rel=0.005)
    assert naive_hc == pytest.approx(fused_hc, rel=0.005)
    assert naive_hc == pytest.approx(truth_hc_mm, rel=0.01)
    assert (tmp_path / "naive.mp4").stat().st_size > 0


def test_onnx_at_size_runs_the_same_weights_at_another_size(tiny_model, tiny_onnx, tmp_path):
    torch = pytest.importorskip("torch")
    from edge_fetal.bench.models import onnx_at_size
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

    model, _ = tiny_model
    batch = np.random.default_rng(1).random((2, 1, 96, 96), dtype=np.float32)
    with OnnxRuntimeBackend(onnx_at_size(tiny_onnx, tmp_path / "at96.onnx", (96, 96)), ["CPUExecutionProvider"], threads=1) as session:
        assert session.input_size == 96
        outputs = session.infer(batch)
    with torch.inference_mode():
        seg_logits, plane_logits = model(torch.from_numpy(batch))
    assert np.mean(outputs.seg_labels == seg_logits.argmax(dim=1).numpy()) > 0.999
    np.testing.assert_allclose(outputs.plane_logits, plane_logits.numpy(), atol=1e-4)


def test_onnx_at_size_gives_a_fitted_box_model_another_long_side(tiny_model, tmp_path):
    pytest.importorskip("torch")
    from edge_fetal.bench.models import model_box, onnx_at_size
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from export.onnx_export import export_onnx

    fitted = export_onnx(tiny_model[0], tmp_path / "fitted.onnx", 64, input_stride=16)
    box = model_box(96, 16)
    assert box == (80, 96)  # the fitted box of an 800x540 frame at long side 96
    with OnnxRuntimeBackend(onnx_at_size(fitted, tmp_path / "at96.onnx", box), ["CPUExecutionProvider"], threads=1) as session:
        assert (session.input_size, session.input_stride) == (96, 16)
        assert session.letterbox_for((540, 800)).model_hw == box
        assert session.infer(np.zeros((1, 1, *box), np.float32)).seg_labels.shape == (1, *box)


def test_checkpoint_named_by_the_manifest_is_used_only_when_it_matches_the_onnx(tiny_model, tiny_onnx, frames, tmp_path):
    torch = pytest.importorskip("torch")
    import shutil

    from edge_fetal.bench.models import load_model_under_test
    from edge_fetal.model.unet import MultiTaskUNet

    model, checkpoint = tiny_model
    onnx_path = shutil.copy(tiny_onnx, tmp_path / "fetal_mtl.onnx")
    saved = torch.load(checkpoint, weights_only=True)
    (tmp_path / "run").mkdir()
    manifest = {"model": {"architecture": {"name": "MultiTaskUNet", **saved["config"]["model"]}},
                "training": {"config": {"run": {"out_dir": str(tmp_path), "name": "run"}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    shutil.copy(checkpoint, tmp_path / "run" / "best.pt")
    matching = load_model_under_test(onnx_path, probe=frames)
    assert matching.torch_weights.startswith(f"checkpoint {tmp_path / 'run' / 'best.pt'}")

    torch.manual_seed(123)
    other = MultiTaskUNet(**saved["config"]["model"]).eval()
    torch.save({**saved, "model": other.state_dict()}, tmp_path / "run" / "best.pt")
    assert load_model_under_test(onnx_path, probe=frames).torch_weights.startswith("random")

    # another run's network at the named path: not used, however similar its labels might be
    widths = [2 * w for w in saved["config"]["model"]["widths"]]
    wider = MultiTaskUNet(**{**saved["config"]["model"], "widths": widths}).eval()
    config = {**saved["config"], "model": {**saved["config"]["model"], "widths": widths}}
    torch.save({**saved, "config": config, "model": wider.state_dict()}, tmp_path / "run" / "best.pt")
    assert load_model_under_test(onnx_path, probe=frames).torch_weights.startswith("random")


def test_cpu_identity_tells_hosts_apart_where_the_model_name_does_not():
    from edge_fetal.bench.schema import _cpu_identity

    epyc = {"model name": "AMD EPYC", "cpu family": "25", "model": "1", "stepping": "1"}
    assert _cpu_identity(epyc) == "family 25 model 1 stepping 1"
    assert _cpu_identity({**epyc, "model": "17"}) != _cpu_identity(epyc)
    arm = {"CPU implementer": "0x41", "CPU part": "0xd42", "CPU variant": "0x0"}
    assert _cpu_identity(arm) == "implementer 0x41 part 0xd42 variant 0x0"
    assert _cpu_identity({}) is None


def test_work_shares_split_model_time_from_the_rest():
    from edge_fetal.bench.end_to_end import work_shares

    stages = {"preprocess": [1.0, 1.0], "infer": [6.0, 6.0], "measure": [2.0, 2.0], "fuse": [1.0, 1.0]}
    shares = work_shares(stages, render_p50_ms=5.0, draw_p50_ms=1.0)
    assert shares["critical_path"] == pytest.approx(0.4)  # 4 of 10 ms outside the model
    assert shares["with_drawing"] == pytest.approx(5 / 11, abs=1e-3)  # drawing the overlay adds 1 ms
    assert shares["all_work"] == pytest.approx(9 / 15, abs=1e-3)  # drawing + mp4 add 5 ms outside it
    assert work_shares({s: [] for s in stages}, None)["critical_path"] is None


def test_live_pipeline_run_accounts_for_every_frame(tmp_path):
    from edge_fetal.biometry import Ellipse, rasterise_ellipse
    from edge_fetal.bench.end_to_end import run_pipeline
    from edge_fetal.runtime.torch_backend import TorchBackend

    frame = np.where(rasterise_ellipse((240, 320), Ellipse(170.0, 118.0, 72.0, 54.0, 20.0)), 220, 30).astype(np.uint8)
    backend = TorchBackend.from_model(_ellipse_net(), 128, device="cpu")
    live = run_pipeline([frame] * 15, [0.2] * 15, backend, tmp_path / "live", live_fps=60.0)
    assert live["frames"] + live["dropped"] == 15
    assert len(live["capture_to_result"]) == live["frames"] > 0
    assert live["report"]["biometry"]["hc"]["value"] is not None
