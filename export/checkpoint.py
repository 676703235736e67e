"""Load a training checkpoint back into the network it was trained as."""

from __future__ import annotations

from edge_fetal.model.load import load_checkpoint_model as load_model  # noqa: F401  (the export commands' name for it)
