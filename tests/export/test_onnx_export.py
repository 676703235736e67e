"""The ONNX contract (names, dtypes, shapes, dynamic batch) and the torch-vs-ONNX parity check."""

from __future__ import annotations

import numpy as np
import pytest

from edge_fetal.engines import ENGINES_DIR, MODEL_NAME

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def contract_of(path):
    graph = onnx.load(str(path)).graph
    elem = onnx.TensorProto
    inputs = {i.name: (i.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
              for i in graph.input}
    outputs = {o.name: o.type.tensor_type.elem_type for o in graph.output}
    return inputs, outputs, elem


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_graph_follows_the_contract(which, tiny_onnx):
    path = tiny_onnx if which == "tiny" else ENGINES_DIR / MODEL_NAME
    if not path.is_file():
        pytest.fail(f"the shipped model {path} is missing")
    inputs, outputs, elem = contract_of(path)
    (dtype, shape), = inputs.values()
    assert list(inputs) == ["image"] and dtype == elem.FLOAT
    assert isinstance(shape[0], str) and shape[1] == 1  # dynamic batch, grey
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    if isinstance(shape[2], str):  # fitted boxes: symbolic H, W and the geometry in the metadata
        assert isinstance(shape[3], str) and int(metadata["input_size"]) % int(metadata["input_stride"]) == 0
    else:
        assert shape[2] == shape[3] and "input_stride" not in metadata  # a fixed square
    assert outputs == {"seg_labels": elem.UINT8, "plane_logits": elem.FLOAT}


def test_export_of_a_fitted_box_checkpoint_writes_its_geometry(tiny_model, tmp_path):
    torch = pytest.importorskip("torch")
    import json

    from edge_fetal.cli import main
    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

    model, _ = tiny_model
    checkpoint = tmp_path / "fitted.pt"
    torch.save({"config": {"model": {"widths": [4, 8, 16, 32, 64]}, "data": {"image_size": 64, "input_hw": [48, 64]}},
                "model": model.state_dict(), "epoch": 1}, checkpoint)
    out = tmp_path / "fitted.onnx"
    assert main(["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(out), "--parity-frames", "2"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    geometry = manifest["model"]["input"]
    assert geometry["shape"] == ["N", 1, "H", "W"] and geometry["size"] == 64 and geometry["stride"] == 16
    assert manifest["model"]["gflops_input_hw"] == [48, 64]
    with OnnxRuntimeBackend(out, providers=["CPUExecutionProvider"], threads=1) as backend:
        assert backend.letterbox_for((540, 800)).model_hw == (48, 64)


def test_dynamic_batch_runs_and_keeps_each_frame_independent(tiny_onnx, frames):
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    labels, logits = session.run(None, {"image": frames})
    single_labels, single_logits = session.run(None, {"image": frames[2:3]})
    assert labels.shape == (4, 64, 64) and labels.dtype == np.uint8 and logits.shape == (4, 4)
    assert np.array_equal(labels[2], single_labels[0])
    np.testing.assert_allclose(logits[2], single_logits[0], atol=1e-5)


def test_parity_check_passes_for_a_faithful_export_and_fails_for_another_model(tiny_model, tiny_onnx):
    torch = pytest.importorskip("torch")
    from edge_fetal.model.unet import MultiTaskUNet
    from export.parity import check_parity

    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (48, 80), dtype=np.uint8) for _ in range(3)]
    report = check_parity(tiny_model[0], tiny_onnx, frames, real_count=1)
    assert report.passed, report.describe()
    torch.manual_seed(5)
    other = MultiTaskUNet(widths=(4, 8, 16, 32, 64)).eval()
    assert not check_parity(other, tiny_onnx, frames, real_count=1).passed


@pytest.mark.parametrize("structure, label", [("head", 1), ("femur", 3)])
@pytest.mark.parametrize("offset, everywhere", [(1000.0, True), (-1000.0, False)])
def test_a_logit_offset_moves_the_exported_outline_and_is_recorded(tiny_checkpoint, frames, tmp_path,
                                                                   structure, label, offset, everywhere):
    import json

    from edge_fetal.cli import main

    out = tmp_path / "offset.onnx"
    assert main(["export", "onnx", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--parity-frames", "2",
                 f"--{structure}-logit-offset", str(offset)]) == 0
    labels, _ = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": frames})
    assert bool((labels == label).all()) is everywhere and bool((labels == label).any()) is everywhere
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["model"][f"{structure}_logit_offset"] == offset
    assert f"the {structure} class's logit offset by {offset:+g}" in manifest["torch_weights"]["source"]


def test_only_a_structure_class_takes_a_logit_offset(tiny_model):
    from edge_fetal.model.unet import offset_seg_logit

    for name in ("background", "heart"):
        with pytest.raises(ValueError, match="no structure class"):
            offset_seg_logit(tiny_model[0], name, 1.0)
