"""`edge-fetal demo` (the README's first command) shows all three biometrics near the scan's truth."""

from __future__ import annotations

import pytest

from edge_fetal.demo import run_demo
from edge_fetal.engines import default_model_path
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend


def test_the_demo_scan_gives_hc_ac_and_fl_near_their_truth(tmp_path):
    pytest.importorskip("onnxruntime")
    with OnnxRuntimeBackend(default_model_path(), ["CPUExecutionProvider"]) as backend:
        report = run_demo(tmp_path, backend)
    truth = report["demo_truth"]
    expected = {"hc": truth["hc_mm (HC18 expert, real)"], "ac": truth["ac_mm (simulated, mean over frames)"],
                "fl": truth["fl_mm (simulated, mean over frames)"]}
    for name, value in expected.items():
        fused = report["biometry"].get(name)
        assert fused is not None, f"the demo shows no {name.upper()}"
        assert fused["unit"] == "mm" and fused["value"] == pytest.approx(value, rel=0.04), name
    assert (tmp_path / "annotated.mp4").stat().st_size > 0


def test_the_demo_into_a_folder_with_an_earlier_run_is_refused_without_overwrite(tmp_path, capsys):
    from edge_fetal.cli import main

    (tmp_path / "events.jsonl").write_text("{}\n")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "events.jsonl").read_text() == "{}\n"
