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
