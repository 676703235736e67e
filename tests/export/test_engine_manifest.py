"""An engine built elsewhere is refused before loading, naming what differs and how to rebuild."""

from __future__ import annotations

import json

import pytest

from edge_fetal.errors import BackendError
from export.engine_manifest import (
    GpuIdentity,
    check_engine_manifest,
    engine_manifest,
    engine_manifest_path,
    read_engine_manifest,
    sha256_of,
    write_engine_manifest,
)

REBUILD = "edge-fetal export tensorrt --onnx engines/fetal_mtl.onnx"
HERE = {"trt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}


@pytest.fixture
def built(tmp_path):
    """An engine file, its ONNX, and the manifest `build_engine` would write for an Orin with TensorRT 10.3.0."""
    onnx_path, engine_path = tmp_path / "fetal_mtl.onnx", tmp_path / "fetal_mtl.engine"
    onnx_path.write_bytes(b"onnx bytes")
    engine_path.write_bytes(b"engine bytes")
    manifest = engine_manifest(engine_path, onnx_path, trt_version="10.3.0", gpu=GpuIdentity("Orin", "8.7"),
                               precision="fp16", profile={"input": "image", "min": [1, 1, 256, 256],
                                                          "opt": [1, 1, 256, 256], "max": [4, 1, 256, 256]},
                               fp32_layers=["/plane_head/Gemm"], workspace_mb=1024, timing_cache=None)
    manifest["onnx"]["path"] = "engines/fetal_mtl.onnx"  # as typed on the command line
    write_engine_manifest(engine_path, manifest)
    return engine_path, onnx_path


def test_manifest_sits_beside_the_engine_and_records_the_build(built):
    engine_path, onnx_path = built
    assert engine_manifest_path(engine_path).name == "fetal_mtl.engine.json"
    manifest = read_engine_manifest(engine_path)
    assert manifest["tensorrt_version"] == "10.3.0" and manifest["gpu"] == {"name": "Orin", "compute_capability": "8.7"}
    assert manifest["onnx"]["sha256"] == sha256_of(onnx_path) and manifest["engine"]["sha256"] == sha256_of(engine_path)
    assert manifest["precision"] == "fp16" and manifest["profile"]["max"] == [4, 1, 256, 256]
    assert manifest["built"]


def test_the_machine_that_built_it_accepts_it(built):
    engine_path, onnx_path = built
    check_engine_manifest(read_engine_manifest(engine_path), **HERE, onnx_sha256=sha256_of(onnx_path),
                          engine_sha256=sha256_of(engine_path))


def test_another_orin_with_the_same_compute_capability_accepts_it(built):
    check_engine_manifest(read_engine_manifest(built[0]), **{**HERE, "gpu_name": "Orin NX"})


@pytest.mark.parametrize("field, value, named", [
    ("trt_version", "10.7.0", ["TensorRT 10.3.0", "TensorRT 10.7.0"]),
    ("compute_capability", "9.0", ["compute capability 8.7", "has 9.0"]),
    ("onnx_sha256", "0" * 64, ["sha256", "ONNX"]),
    ("engine_sha256", "0" * 64, ["engine file"]),
])
def test_a_mismatch_is_refused_naming_it_and_the_rebuild_command(built, field, value, named):
    with pytest.raises(BackendError) as caught:
        check_engine_manifest(read_engine_manifest(built[0]), **{**HERE, field: value})
    message = str(caught.value)
    assert all(part in message for part in named), message
    assert message.endswith(f"rebuild it on this machine with `{REBUILD}`") and "\n" not in message


def test_every_difference_is_named_at_once(built):
    with pytest.raises(BackendError) as caught:
        check_engine_manifest(read_engine_manifest(built[0]), trt_version="10.7.0", gpu_name="NVIDIA H200",
                              compute_capability="9.0")
    assert "TensorRT 10.7.0" in str(caught.value) and "NVIDIA H200" in str(caught.value)


def test_a_missing_manifest_is_refused_with_the_rebuild_command(tmp_path):
    with pytest.raises(BackendError, match="no engine manifest.*edge-fetal export tensorrt --onnx"):
        read_engine_manifest(tmp_path / "fetal_mtl.engine")


@pytest.mark.parametrize("text", ["{not json", json.dumps({"manifest_version": 0})])
def test_an_unreadable_or_old_manifest_is_refused(built, text):
    engine_manifest_path(built[0]).write_text(text)
    with pytest.raises(BackendError, match="edge-fetal export tensorrt"):
        read_engine_manifest(built[0])
