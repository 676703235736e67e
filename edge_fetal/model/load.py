"""Load a training checkpoint back into the network it was trained as (needs the `train` extra)."""

from __future__ import annotations

from pathlib import Path

from edge_fetal.errors import EdgeFetalError


def load_checkpoint_model(checkpoint_path: str | Path):
    """The `MultiTaskUNet` of a checkpoint in eval mode (on the CPU), and the checkpoint dict itself."""
    import torch

    from edge_fetal.model.unet import MultiTaskUNet

    path = Path(checkpoint_path)
    if not path.is_file():
        raise EdgeFetalError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = MultiTaskUNet(**checkpoint["config"]["model"])
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, RuntimeError) as error:  # not a checkpoint of this project
        raise EdgeFetalError(f"{path} is not an edge-fetal training checkpoint: {error}") from None
    return model.eval(), checkpoint


def load_shipped_model(onnx_path: str | Path):
    """The torch network shipped beside an ONNX model and checked by its manifest
    (`engines.shipped_torch_weights`): (model in eval mode, checkpoint dict, weights path), or None
    when no usable one is there, so that a caller falls back to another source of weights."""
    from edge_fetal.engines import shipped_torch_weights
    from edge_fetal.errors import BackendError

    try:
        weights = shipped_torch_weights(Path(onnx_path))
    except BackendError:
        return None
    model, checkpoint = load_checkpoint_model(weights)
    return model, checkpoint, weights


def trained_input_stride(model, checkpoint: dict) -> int | None:
    """The input stride a checkpoint's network is served with: its size multiple when it was
    trained on fitted boxes (`data.input_hw`), so it takes them; None when it was trained on
    squares, so it takes only its square input."""
    return model.size_multiple if checkpoint["config"]["data"].get("input_hw") else None
