"""Backend selection: `auto` decides from what the machine offers (faked at the probes) and says why."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("onnxruntime")

from edge_fetal.errors import BackendError
from edge_fetal.runtime import select
from edge_fetal.runtime.engine_manifest import GpuIdentity
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge_fetal.runtime.tensorrt_backend import NO_TENSORRT

CPU, CUDA, TRT_EP = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
ORIN = GpuIdentity("Orin", "8.7")


def fake_machine(monkeypatch, *, trt: str | None = None, gpu: GpuIdentity | None = None, providers=(CPU,)):
    monkeypatch.setattr(select, "tensorrt_version", lambda: trt)
    monkeypatch.setattr(select, "gpu_identity", lambda: gpu)
    monkeypatch.setattr(select, "ort_providers", lambda: list(providers))


def write_engine(tmp_path, onnx_path, compute_capability: str):
    """A stand-in engine file beside a copy of the model, with a manifest as `build_engine` writes it."""
    from export.engine_manifest import engine_manifest, write_engine_manifest

    model = tmp_path / "fetal_mtl.onnx"
    model.write_bytes(onnx_path.read_bytes())
    engine = tmp_path / "fetal_mtl.engine"
    engine.write_bytes(b"not really an engine")
    manifest = engine_manifest(engine, model, trt_version="10.3.0", gpu=GpuIdentity("Orin", compute_capability),
                               precision="fp16", profile={"input": "image", "min": [1, 1, 64, 64], "opt": [1, 1, 64, 64],
                                                          "max": [4, 1, 64, 64]},
                               fp32_layers=[], workspace_mb=256, timing_cache=None)
    write_engine_manifest(engine, manifest)
    return model, engine


def test_auto_on_a_plain_cpu_runs_onnxruntime_on_the_cpu_and_says_why(monkeypatch, tiny_onnx):
    fake_machine(monkeypatch)
    lines = []
    with select.open_backend("auto", tiny_onnx, log=lines.append) as backend:
        assert isinstance(backend, OnnxRuntimeBackend) and backend.providers == [CPU]
    assert lines[0] == f"backend auto: skipping TensorRT: {NO_TENSORRT}"
    assert lines[-1].startswith("backend auto: chose onnxruntime because")
    assert all("\n" not in line for line in lines)


def test_auto_prefers_the_gpu_providers_of_onnxruntime_best_first(monkeypatch, tiny_onnx):
    fake_machine(monkeypatch, providers=(TRT_EP, CUDA, CPU))
    plan = select.plan_auto(tiny_onnx, log=lambda _line: None)
    assert [c.kwargs["providers"] for c in plan] == [[TRT_EP, CUDA, CPU], [CUDA, CPU], [CPU]]
    assert all(c.backend == "onnxruntime" for c in plan)


def test_auto_falls_back_from_a_failing_gpu_provider_out_loud(monkeypatch, tiny_onnx):
    fake_machine(monkeypatch, providers=(CUDA, CPU))  # ORT here has no CUDA: the first try fails for real
    lines = []
    with select.open_backend("auto", tiny_onnx, log=lines.append) as backend:
        assert backend.providers == [CPU]
    assert any(line.startswith("backend auto: onnxruntime failed:") and CUDA in line for line in lines)


def test_auto_takes_a_matching_tensorrt_engine_first(monkeypatch, tmp_path, tiny_onnx):
    fake_machine(monkeypatch, trt="10.3.0", gpu=ORIN, providers=(CUDA, CPU))
    model, engine = write_engine(tmp_path, tiny_onnx, "8.7")
    lines = []
    plan = select.plan_auto(model, log=lines.append)
    assert plan[0].backend == "tensorrt" and plan[0].kwargs["engine_path"] == engine
    assert "matches this Orin and TensorRT 10.3.0" in plan[0].reason
    assert [c.backend for c in plan[1:]] == ["onnxruntime", "onnxruntime"] and lines == []


def test_auto_skips_an_engine_built_for_another_gpu_and_says_how_to_rebuild(monkeypatch, tmp_path, tiny_onnx):
    fake_machine(monkeypatch, trt="10.3.0", gpu=GpuIdentity("NVIDIA H200", "9.0"))
    model, _ = write_engine(tmp_path, tiny_onnx, "8.7")
    lines = []
    plan = select.plan_auto(model, log=lines.append)
    assert [c.backend for c in plan] == ["onnxruntime"]
    assert len(lines) == 1 and "compute capability 8.7" in lines[0] and "9.0" in lines[0]
    assert f"edge-fetal export tensorrt --onnx {model}" in lines[0]


def test_auto_skips_an_engine_built_from_another_model(monkeypatch, tmp_path, tiny_onnx):
    fake_machine(monkeypatch, trt="10.3.0", gpu=ORIN)
    model, _ = write_engine(tmp_path, tiny_onnx, "8.7")
    model.write_bytes(model.read_bytes() + b"\0")  # the model changed after the engine was built
    lines = []
    assert select.plan_auto(model, log=lines.append)[0].backend == "onnxruntime"
    assert "sha256" in lines[0]


def test_asking_for_tensorrt_without_tensorrt_is_one_sentence(monkeypatch, tiny_onnx):
    fake_machine(monkeypatch)
    with pytest.raises(BackendError) as caught:
        select.open_backend("tensorrt", tiny_onnx, log=lambda _line: None)
    assert str(caught.value) == NO_TENSORRT
    assert str(caught.value).count(". ") == 0 and "\n" not in str(caught.value)


def test_asking_for_tensorrt_without_a_gpu_is_refused(monkeypatch, tiny_onnx):
    fake_machine(monkeypatch, trt="10.3.0", gpu=None)
    with pytest.raises(BackendError, match="no CUDA GPU"):
        select.open_backend("tensorrt", tiny_onnx, log=lambda _line: None)


def test_asking_for_tensorrt_without_an_engine_says_how_to_build_one(monkeypatch, tmp_path, tiny_onnx):
    fake_machine(monkeypatch, trt="10.3.0", gpu=ORIN)
    with pytest.raises(BackendError, match="edge-fetal export tensorrt --onnx"):
        select.open_backend("tensorrt", tiny_onnx, engine_path=tmp_path / "none.engine", log=lambda _line: None)


def test_onnxruntime_and_torch_by_name(tiny_onnx, tiny_checkpoint):
    lines = []
    with select.open_backend("onnxruntime", tiny_onnx, log=lines.append) as backend:
        assert backend.name == "onnxruntime"
    with select.open_backend("torch", tiny_checkpoint, log=lines.append) as backend:
        assert backend.name == "torch" and backend.input_size == 64
    assert len(lines) == 2


def test_an_unknown_backend_name_lists_the_choices(tiny_onnx):
    with pytest.raises(BackendError, match="auto, tensorrt, onnxruntime, torch"):
        select.open_backend("openvino", tiny_onnx)


def test_choosing_a_backend_imports_no_gpu_library_or_torch():
    code = ("import sys; import edge_fetal.runtime.select, edge_fetal.runtime.tensorrt_backend, "
            "edge_fetal.runtime.torch_backend; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'cuda', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
