"""torch → ONNX per the model contract: `image` float32 [N,1,H,W] → `seg_labels` uint8 [N,H,W],
`plane_logits` float32 [N,4]; argmax and the narrow cast inside the graph; dynamic batch; one file.

A square model is fixed at H = W = S. A model trained on fitted boxes keeps H and W symbolic and
names its long side and stride in the metadata (`input_size`, `input_stride`), which the
backends read to letterbox each source into its smallest box.
"""

from __future__ import annotations

from pathlib import Path

from edge_fetal.runtime.backend import PLANES, SEG_CLASSES

OPSET = 17


def export_onnx(model, out_path: str | Path, image_size: int, opset: int = OPSET, input_stride: int | None = None) -> Path:
    """Write `model` (a MultiTaskUNet in eval mode) as a checked, self-contained ONNX file.

    input_stride: None = fixed `[N,1,S,S]` input; k = any H, W multiple of k up to `image_size`.
    """
    import onnx
    import torch

    from edge_fetal.model.unet import ExportWrapper

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(model.eval()).eval()
    example = torch.zeros(1, 1, image_size, image_size)
    # The legacy (TorchScript) exporter writes one file with the weights inside and needs no
    # onnxscript; the dynamo exporter would split the weights out unless told otherwise.
    torch.onnx.export(
        wrapper, (example,), str(out_path), dynamo=False, opset_version=opset,
        input_names=["image"], output_names=["seg_labels", "plane_logits"],
        dynamic_axes=_dynamic_axes(input_stride is not None),
    )
    graph = onnx.load(str(out_path))
    onnx.checker.check_model(graph, full_check=True)
    graph.metadata_props.add(key="planes", value=",".join(PLANES))
    graph.metadata_props.add(key="seg_classes", value=",".join(SEG_CLASSES))
    if input_stride is not None:
        graph.metadata_props.add(key="input_size", value=str(image_size))
        graph.metadata_props.add(key="input_stride", value=str(input_stride))
    onnx.save(graph, str(out_path))
    return out_path


def _dynamic_axes(fitted: bool) -> dict:
    image, labels = {0: "batch"}, {0: "batch"}
    if fitted:
        image.update({2: "height", 3: "width"})
        labels.update({1: "height", 2: "width"})
    return {"image": image, "seg_labels": labels, "plane_logits": {0: "batch"}}
