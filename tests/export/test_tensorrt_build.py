"""The engine build: FP32 plane head found by walking the network; a clear refusal without TensorRT."""

from __future__ import annotations

import importlib.util

import pytest

from edge_fetal.errors import BackendError, EdgeFetalError
from export.tensorrt_build import LayerInfo, build_engine, plane_head_layers

# The shape of the network the ONNX parser makes of MultiTaskUNet: the bottleneck feeds both the
# decoder and the plane head (global pool → flatten → matmul + bias); seg labels come from TopK.
NETWORK = [
    LayerInfo("/encoder/conv", "CONVOLUTION", ("image",), ("c1",)),
    LayerInfo("/encoder/relu", "ACTIVATION", ("c1",), ("bottleneck",)),
    LayerInfo("/decoder/resize", "RESIZE", ("bottleneck",), ("up",)),
    LayerInfo("/seg_head/conv", "CONVOLUTION", ("up",), ("seg_logits",)),
    LayerInfo("/ArgMax", "TOPK", ("seg_logits",), ()),
    LayerInfo("/plane_head/pool", "REDUCE", ("bottleneck",), ("pooled",)),
    LayerInfo("/plane_head/flatten", "SHUFFLE", ("pooled",), ("flat",)),
    LayerInfo("/plane_head/weight", "CONSTANT", (), ("w",)),
    LayerInfo("/plane_head/matmul", "MATRIX_MULTIPLY", ("flat", "w"), ("mm",)),
    LayerInfo("/plane_head/bias", "CONSTANT", (), ("b",)),
    LayerInfo("/plane_head/add", "ELEMENTWISE", ("mm", "b"), ("plane_logits",)),
]


def test_the_plane_head_is_everything_from_the_global_pool_to_plane_logits():
    assert plane_head_layers(NETWORK) == [
        "/plane_head/pool", "/plane_head/flatten", "/plane_head/weight", "/plane_head/matmul",
        "/plane_head/bias", "/plane_head/add",
    ]


def test_the_walk_never_enters_the_backbone_even_without_a_pool():
    flatten_bottleneck = LayerInfo("/plane_head/flatten", "SHUFFLE", ("bottleneck",), ("flat",))
    no_pool = [flatten_bottleneck if layer.name == flatten_bottleneck.name else layer
               for layer in NETWORK if layer.kind != "REDUCE"]
    chosen = plane_head_layers(no_pool)
    assert "/encoder/conv" not in chosen and "/seg_head/conv" not in chosen
    assert "/encoder/relu" in chosen  # what lies between the last convolution and the head


def test_a_network_without_plane_logits_is_refused():
    with pytest.raises(EdgeFetalError, match="plane_logits"):
        plane_head_layers(NETWORK[:5])


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_building_without_tensorrt_is_one_clear_sentence(tmp_path):
    with pytest.raises(BackendError) as caught:
        build_engine(tmp_path / "model.onnx", tmp_path / "model.engine")
    assert str(caught.value) == ("TensorRT is not installed here: build engines on the Jetson (JetPack ships it), "
                                 "see README 'Deploying on a Jetson'")


def test_profile_varies_the_batch_of_a_square_model_and_the_box_of_a_fitted_one(tiny_model, tiny_onnx, tmp_path):
    pytest.importorskip("onnxruntime")
    from export.onnx_export import export_onnx
    from export.tensorrt_build import profile_shapes

    square, stride = profile_shapes(tiny_onnx, (-1, 1, 64, 64), opt_batch=1, max_batch=4)
    assert stride is None
    assert square == {"min": (1, 1, 64, 64), "opt": (1, 1, 64, 64), "max": (4, 1, 64, 64)}
    fitted_path = export_onnx(tiny_model[0], tmp_path / "fitted.onnx", 64, input_stride=16)
    fitted, stride = profile_shapes(fitted_path, (-1, 1, -1, -1), opt_batch=2, max_batch=4)
    assert stride == 16  # recorded in the engine manifest: the backend needs it to letterbox
    assert fitted == {"min": (1, 1, 16, 16), "opt": (2, 1, 48, 64), "max": (4, 1, 64, 64)}
