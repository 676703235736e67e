"""The shipped model: where it lives, and its manifest (input size, split, evaluation figures)."""

from __future__ import annotations

import json
from pathlib import Path

from edge_fetal.errors import BackendError, EdgeFetalError

ENGINES_DIR = Path(__file__).resolve().parents[1] / "engines"
MODEL_NAME = "fetal_mtl.onnx"


def default_model_path() -> Path:
    """`engines/fetal_mtl.onnx` of this checkout; a clear error when it is missing."""
    path = ENGINES_DIR / MODEL_NAME
    if not path.is_file():
        raise EdgeFetalError(f"no shipped model at {path}: pass --model PATH to an exported ONNX file")
    return path


def manifest_path(model_path: Path) -> Path:
    return Path(model_path).with_name("manifest.json")


def load_manifest(model_path: Path, required: bool = True) -> dict:
    """The manifest next to a model; {} when absent and not required."""
    path = manifest_path(model_path)
    if not path.is_file():
        if required:
            raise EdgeFetalError(f"no manifest.json next to {model_path}: the training split is unknown")
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise EdgeFetalError(f"{path} is not valid JSON: {error}") from None


def validation_subjects(manifest: dict) -> set[str]:
    """HC18 pregnancy numbers (`NNN`) held out from training, as recorded in the manifest."""
    subjects = manifest.get("training", {}).get("split", {}).get("hc18_validation_subjects")
    if not subjects:
        raise EdgeFetalError("the manifest records no HC18 validation split (training.split.hc18_validation_subjects)")
    return set(subjects)


def shipped_torch_weights(model_path: Path) -> Path:
    """The torch weights that the manifest beside an ONNX model names (`torch_weights`), checked:
    the file's sha256 is the recorded one, and they were made for this very ONNX file. Anything
    else raises, naming what is wrong, so the torch backend never runs weights of another model."""
    from edge_fetal.runtime.engine_manifest import sha256_of

    model_path = Path(model_path)
    entry = load_manifest(model_path, required=False).get("torch_weights")
    if not entry:
        raise BackendError(f"the manifest beside {model_path} names no torch weights: give the torch backend a "
                           "training checkpoint (runs/NAME/best.pt) with --model")
    weights = model_path.with_name(entry["file"])
    if not weights.is_file():
        raise BackendError(f"the torch weights {weights} named by the manifest are missing")
    if sha256_of(weights) != entry["sha256"]:
        raise BackendError(f"{weights} does not match the checksum in the manifest: it is damaged or another "
                           "model's; re-export it (`edge-fetal export onnx` or `python -m export.torch_weights`)")
    if entry.get("onnx_sha256") != sha256_of(model_path):
        raise BackendError(f"{weights} was made for another version of {model_path.name}: re-export it "
                           "(`edge-fetal export onnx` or `python -m export.torch_weights`)")
    return weights
