"""INT8: the quantised model still computes the same thing, and the ship/no-ship rule guards accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from export.int8 import int8_verdict

FP32 = {"hc_mae_mm": 2.20, "plane_accuracy": 0.995}


def test_int8_is_refused_when_not_faster():
    ship, reason = int8_verdict(FP32, {"hc_mae_mm": 2.21, "plane_accuracy": 0.995}, 13.0, 15.2)
    assert not ship and "not faster" in reason and "15.2 vs 13.0 ms" in reason


@pytest.mark.parametrize("int8", [{"hc_mae_mm": 2.55, "plane_accuracy": 0.995}, {"hc_mae_mm": 2.21, "plane_accuracy": 0.990}])
def test_int8_is_refused_when_it_loses_accuracy(int8):
    ship, reason = int8_verdict(FP32, int8, 13.0, 6.0)
    assert not ship and "accuracy" in reason


def test_int8_is_kept_when_faster_and_accurate_enough():
    assert int8_verdict(FP32, {"hc_mae_mm": 2.40, "plane_accuracy": 0.994}, 13.0, 6.0)[0]


def test_quantised_shipped_model_keeps_the_contract_and_its_answers(tmp_path):
    """Calibrated on bundled real frames, INT8 labels agree with fp32 on almost every pixel, and the
    copy keeps the float model's input geometry (the quantiser drops the metadata that holds it)."""
    pytest.importorskip("onnxruntime")
    from edge_fetal.calibration import letterbox
    from edge_fetal.data.hc18 import load_image
    from edge_fetal.demo import bundled_hc18_dir
    from edge_fetal.engines import default_model_path
    from edge_fetal.runtime.analyse import preprocess
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from export.int8 import quantise_int8

    frames = [load_image(path) for path in sorted(bundled_hc18_dir().glob("*HC.png"))]
    out = quantise_int8(default_model_path(), tmp_path / "int8.onnx", frames[:4])
    cpu = ["CPUExecutionProvider"]
    with OnnxRuntimeBackend(default_model_path(), cpu, threads=1) as fp32, OnnxRuntimeBackend(out, cpu, threads=1) as int8:
        assert (int8.input_size, int8.input_stride) == (fp32.input_size, fp32.input_stride)
        box = fp32.letterbox_for(frames[4].shape).model_hw
        batch = np.concatenate([preprocess(frame, letterbox(frame.shape, box)) for frame in frames[4:]])
        expected, got = fp32.infer(batch), int8.infer(batch)
    assert got.seg_labels.dtype == np.uint8 and got.plane_logits.dtype == np.float32
    assert got.seg_labels.shape == expected.seg_labels.shape
    assert np.mean(got.seg_labels == expected.seg_labels) > 0.98
    assert np.array_equal(np.argmax(got.plane_logits, 1), np.argmax(expected.plane_logits, 1))


def test_int8_timing_calls_every_variant_once_a_round():
    from export.int8_record import interleaved_p50_ms

    calls = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def infer(self, batch):
            calls.append(self.name)

    p50 = interleaved_p50_ms({"fp32": Recorder("fp32"), "int8": Recorder("int8")}, np.zeros((1, 1, 8, 8), np.float32), runs=4)
    assert set(p50) == {"fp32", "int8"} and all(v >= 0 for v in p50.values())
    # after 5 warm-up calls each, every round calls both once, the start rotating as in `edge-fetal bench`
    assert calls[:10] == ["fp32"] * 5 + ["int8"] * 5
    assert calls[10:] == ["fp32", "int8", "int8", "fp32", "fp32", "int8", "int8", "fp32"]
