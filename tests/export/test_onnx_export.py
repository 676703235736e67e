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
    assert isinstance(shape[0], str) and shape[1] == 1 and shape[2] == shape[3]  # dynamic batch, square grey
    assert outputs == {"seg_labels": elem.UINT8, "plane_logits": elem.FLOAT}


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
