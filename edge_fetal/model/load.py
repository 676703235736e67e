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


def trained_input_stride(model, checkpoint: dict) -> int | None:
    """The input stride a checkpoint's network is served with: its size multiple when it was
    trained on fitted boxes (`data.input_hw`), so it takes them; None when it was trained on
    squares, so it takes only its square input."""
    return model.size_multiple if checkpoint["config"]["data"].get("input_hw") else None
