"""torch → ONNX per the model contract: `image` float32 [N,1,S,S] → `seg_labels` uint8 [N,S,S],
`plane_logits` float32 [N,4]; argmax and the narrow cast inside the graph; dynamic batch; one file.
"""

from __future__ import annotations

from pathlib import Path

from edge_fetal.runtime.backend import PLANES, SEG_CLASSES

OPSET = 17


def export_onnx(model, out_path: str | Path, image_size: int, opset: int = OPSET) -> Path:
    """Write `model` (a MultiTaskUNet in eval mode) as a checked, self-contained ONNX file."""
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
        dynamic_axes={"image": {0: "batch"}, "seg_labels": {0: "batch"}, "plane_logits": {0: "batch"}},
    )
    graph = onnx.load(str(out_path))
    onnx.checker.check_model(graph, full_check=True)
    graph.metadata_props.add(key="planes", value=",".join(PLANES))
    graph.metadata_props.add(key="seg_classes", value=",".join(SEG_CLASSES))
    onnx.save(graph, str(out_path))
    return out_path
