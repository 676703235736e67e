"""The torch weights beside an exported model: written by `export onnx`, recovered from an ONNX file
whose checkpoint is gone, checked by the manifest, and run by `--backend torch` with the ONNX
file's own results."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from edge_fetal.errors import BackendError

pytest.importorskip("torch")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    """`edge-fetal export onnx` of the tiny checkpoint into a fresh folder: (onnx path, manifest)."""
    from export.command import run_onnx

    out = tmp_path_factory.mktemp("exported") / "model.onnx"
    run_onnx(argparse.Namespace(checkpoint=tiny_checkpoint, out=out, parity_frames=2, head_logit_offset=0.0,
                                femur_logit_offset=0.0))
    return out, json.loads(out.with_name("manifest.json").read_text())


def _labels_both_ways(onnx_path, frames):
    from edge_fetal.runtime.select import open_backend

    with open_backend("torch", onnx_path, log=lambda _line: None) as torch_backend:
        torch_out = torch_backend.infer(frames)
    with open_backend("onnxruntime", onnx_path, log=lambda _line: None) as ort_backend:
        ort_out = ort_backend.infer(frames)
    return torch_out, ort_out


def test_export_writes_torch_weights_that_the_torch_backend_runs_with_the_onnx_results(exported, frames):
    onnx_path, manifest = exported
    entry = manifest["torch_weights"]
    assert onnx_path.with_name(entry["file"]).is_file() and entry["onnx_sha256"] == manifest["model"]["sha256"]
    torch_out, ort_out = _labels_both_ways(onnx_path, frames)
    assert np.array_equal(torch_out.seg_labels, ort_out.seg_labels)
    assert np.allclose(torch_out.plane_logits, ort_out.plane_logits, atol=1e-4)


def test_weights_recovered_from_the_onnx_file_compute_what_it_computes(tiny_checkpoint, tiny_onnx, frames):
    import torch

    from edge_fetal.model.unet import ExportWrapper
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from export.torch_weights import recover_from_onnx

    architecture = torch.load(tiny_checkpoint, weights_only=True)["config"]["model"]
    recovered = recover_from_onnx(tiny_onnx, architecture)
    with torch.no_grad():
        labels, logits = (t.numpy() for t in ExportWrapper(recovered).eval()(torch.from_numpy(frames)))
    with OnnxRuntimeBackend(tiny_onnx, providers=["CPUExecutionProvider"]) as backend:
        expected = backend.infer(frames)
    assert np.array_equal(labels, expected.seg_labels)
    assert np.allclose(logits, expected.plane_logits, atol=1e-4)
    assert len(np.unique(expected.seg_labels)) > 1  # the frames give more than one class: a real comparison


def test_recovery_refuses_an_architecture_the_onnx_file_was_not_made_from(tiny_onnx):
    from edge_fetal.errors import EdgeFetalError
    from export.torch_weights import recover_from_onnx

    with pytest.raises(EdgeFetalError, match="kernel|layers"):
        recover_from_onnx(tiny_onnx, {"widths": [8, 16, 32, 64, 128]})


def test_damaged_or_stale_torch_weights_are_refused_by_name(exported, tmp_path):
    from edge_fetal.runtime.select import open_backend

    onnx_path, manifest = exported
    folder = tmp_path / "copy"
    shutil.copytree(onnx_path.parent, folder)
    weights = folder / manifest["torch_weights"]["file"]
    weights.write_bytes(weights.read_bytes()[:-8] + b"damaged!")
    with pytest.raises(BackendError, match="checksum"):
        open_backend("torch", folder / onnx_path.name, log=lambda _line: None)
    shutil.copy(onnx_path.parent / weights.name, weights)  # intact weights, but the ONNX file changed since
    (folder / onnx_path.name).write_bytes((folder / onnx_path.name).read_bytes() + b"\0")
    with pytest.raises(BackendError, match="another version"):
        open_backend("torch", folder / onnx_path.name, log=lambda _line: None)


def test_an_onnx_model_without_torch_weights_says_what_the_torch_backend_needs(tiny_onnx):
    from edge_fetal.runtime.select import open_backend

    with pytest.raises(BackendError, match="names no torch weights"):
        open_backend("torch", tiny_onnx, log=lambda _line: None)


def test_the_shipped_torch_weights_match_the_shipped_model_on_a_real_frame():
    from edge_fetal.data.hc18 import load_image
    from edge_fetal.demo import bundled_hc18_dir
    from edge_fetal.engines import default_model_path
    from edge_fetal.runtime.analyse import preprocess
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

    model_path = default_model_path()
    frame = load_image(sorted(bundled_hc18_dir().glob("*HC.png"))[0])  # real HC18, bundled with attribution
    with OnnxRuntimeBackend(model_path, providers=["CPUExecutionProvider"]) as backend:
        batch = preprocess(frame, backend.letterbox_for(frame.shape))
    torch_out, ort_out = _labels_both_ways(model_path, batch)
    assert np.array_equal(torch_out.seg_labels, ort_out.seg_labels)
    assert (ort_out.seg_labels == 1).sum() > 1000  # a head was found: the comparison covers the structure
    assert np.allclose(torch_out.plane_logits, ort_out.plane_logits, atol=1e-4)
