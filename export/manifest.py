"""The manifest beside a shipped model: what it is, what it was trained on, how it measured."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from edge_fetal.evaluation.report import write_json_atomic
from edge_fetal.runtime.engine_manifest import sha256_of
from edge_fetal.runtime.backend import PLANES, SEG_CLASSES


def model_manifest(onnx_path: Path, image_size: int, stride: int | None, typical_hw: tuple[int, int], opset: int,
                   gflops: float, params: int, checkpoint: dict, data_description: dict) -> dict:
    """The manifest of a freshly exported model (evaluation figures are added by `eval --record`).

    stride None: a fixed square input. Else H and W are any multiples of `stride` up to
    `image_size`, and GFLOP are those of `typical_hw`, the box of an 800x540 frame.
    """
    if stride is None:
        geometry = {"shape": ["N", 1, image_size, image_size],
                    "preprocess": "grey, letterboxed (aspect kept, zero padding), scaled to [0,1]"}
    else:
        geometry = {"shape": ["N", 1, "H", "W"], "size": image_size, "stride": stride, "typical_hw": list(typical_hw),
                    "preprocess": f"grey, letterboxed into the fitted box (long side {image_size}, short side "
                                  f"zero-padded to a multiple of {stride}), scaled to [0,1]"}
    return {
        "model": {
            "file": onnx_path.name, "sha256": sha256_of(onnx_path), "bytes": onnx_path.stat().st_size,
            "input": {"name": "image", **geometry, "dtype": "float32", "range": [0, 1]},
            "outputs": {"seg_labels": {"dtype": "uint8", "classes": list(SEG_CLASSES)},
                        "plane_logits": {"dtype": "float32", "classes": list(PLANES)}},
            "opset": opset, "gflops_per_frame": gflops, "gflops_input_hw": list(typical_hw), "parameters": params,
            "architecture": {"name": "MultiTaskUNet", **checkpoint["config"]["model"]},
        },
        "training": {
            "data": "real HC18 heads (CC BY 4.0) + frames from the edge-fetal ultrasound simulator (all planes)",
            "split": data_description,
            "epochs": checkpoint["epoch"], "config": checkpoint["config"],
            "validation_figures_at_checkpoint": checkpoint.get("figures", {}),
        },
        "exported": datetime.date.today().isoformat(),
        "evaluation": {},
    }


def write_manifest(path: str | Path, manifest: dict) -> None:
    write_json_atomic(path, manifest)


def record_evaluation(manifest_path: str | Path, name: str, figures: dict, command: str) -> None:
    """Add one evaluation's figures, with its date and command, to an existing manifest."""
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("evaluation", {})[name] = {
        "date": datetime.date.today().isoformat(), "command": command, **figures,
    }
    write_json_atomic(manifest_path, manifest)
