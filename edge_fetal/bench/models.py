"""The model under test, in every form the benchmark runs: the ONNX file, the same graph at other
input sizes, its INT8 copy, and the torch network (for the eager rows and the naive baseline).

The network is fully convolutional and its Resize nodes use scales, so the same ONNX weights run
at any input side that is a multiple of 16: `onnx_at_size` only rewrites the declared shapes.
A model that takes fitted boxes is timed on the box of an 800x540 frame (`TYPICAL_SOURCE_HW`,
the size of HC18's and the simulator's frames), as the engine feeds it; a square model on S².
The torch network is the checkpoint when one is given, else the torch weights shipped beside the
ONNX file, else the manifest's architecture with random weights (latency does not depend on the
weights, but the naive baseline's masks do; the JSON says which).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_fetal.calibration import TYPICAL_SOURCE_HW
from edge_fetal.engines import ENGINES_DIR, load_manifest
from edge_fetal.errors import EdgeFetalError
from edge_fetal.runtime.onnxruntime_backend import probe_geometry

REPO = ENGINES_DIR.parent


@dataclass
class ModelUnderTest:
    onnx_path: Path
    input_size: int
    manifest: dict
    network: object | None  # MultiTaskUNet in eval mode, or None without torch / architecture
    torch_weights: str  # where the torch network's weights came from, or why there is none
    input_stride: int | None = None  # None: a square model; k: it takes fitted boxes

    def box(self, side: int) -> tuple[int, int]:
        """The (H, W) input timed for long side `side`: S² for a square model, else the fitted box of an 800x540 frame."""
        return model_box(side, self.input_stride)

    @property
    def size_multiple(self) -> int:
        return int(getattr(self.network, "size_multiple", 16))

    def describe(self) -> dict:
        from edge_fetal.runtime.engine_manifest import sha256_of

        section = self.manifest.get("model", {})
        return {"path": str(self.onnx_path), "sha256": sha256_of(self.onnx_path), "input_size": self.input_size,
                "input_hw": list(self.box(self.input_size)), "input_stride": self.input_stride,
                "architecture": section.get("architecture") or self.architecture(), "gflop_per_frame": self.gflop(self.input_size),
                "onnx_weights": "as in the file", "torch_weights": self.torch_weights}

    def architecture(self) -> dict | None:
        if self.network is None:
            return None
        widths = list(self.network.encoder.out_channels)
        return {"name": "MultiTaskUNet", "widths": widths}

    def gflop(self, size: int) -> float | None:
        """GFLOP of one frame at long side `size`: counted on the torch network, else the manifest's
        figure scaled by area."""
        h, w = self.box(size)
        if self.network is not None:
            from edge_fetal.model.unet import count_gflops

            return round(count_gflops(self.network, (h, w)), 4)
        section = self.manifest.get("model", {})
        recorded = section.get("gflops_per_frame")
        recorded_h, recorded_w = section.get("gflops_input_hw") or self.box(self.input_size)
        return round(recorded * h * w / (recorded_h * recorded_w), 4) if recorded else None


def model_box(side: int, stride: int | None) -> tuple[int, int]:
    """The model input the benchmark times at long side `side` (see the module docstring)."""
    from edge_fetal.calibration import fitted_box

    return (side, side) if stride is None else fitted_box(TYPICAL_SOURCE_HW, side, stride)


def load_model_under_test(onnx_path: str | Path, checkpoint: str | Path | None = None, probe=None,
                          seed: int = 0) -> ModelUnderTest:
    """The ONNX model and a torch network for it: `checkpoint`; else the torch weights shipped beside
    the ONNX file (`engines/fetal_mtl.pt`, checked by the manifest); else the manifest's training
    run's best.pt when its labels agree with the ONNX file's on `probe` (a `[N,1,S,S]` batch); else
    the manifest's architecture with random weights; else none (no torch rows, no naive baseline)."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EdgeFetalError(f"no model at {onnx_path}: pass --model PATH to an exported ONNX file")
    manifest = load_manifest(onnx_path, required=False)
    size, stride = probe_geometry(onnx_path)

    def found(network, torch_weights: str) -> ModelUnderTest:
        return ModelUnderTest(onnx_path, size, manifest, network, torch_weights, input_stride=stride)

    try:
        import torch

        from edge_fetal.model.load import load_checkpoint_model, load_shipped_model
        from edge_fetal.model.unet import MultiTaskUNet
    except ImportError:
        return found(None, "none: torch is not installed (the `train` extra), so no torch rows and no naive baseline")
    if checkpoint:
        return found(load_checkpoint_model(checkpoint)[0], f"checkpoint {checkpoint}")
    shipped = load_shipped_model(onnx_path)
    if shipped is not None:
        network, _, weights = shipped
        return found(network, f"{weights.name} (the shipped torch weights, checked by the manifest)")
    # none shipped, or not for this ONNX file: a training run's checkpoint, else random weights
    named = manifest_checkpoint(manifest)
    architecture = manifest.get("model", {}).get("architecture")
    if named is not None and probe is not None:
        network, state = load_checkpoint_model(named)
        # Another run's checkpoint may sit at the named path: it must be this network, not a similar one.
        same = _same_architecture(state["config"]["model"], architecture)
        agreement = label_agreement(network, onnx_path, probe) if same else 0.0
        if agreement >= 0.999:
            return found(network, f"checkpoint {named} (named by the manifest; "
                         f"its labels agree with the ONNX file's on {100 * agreement:.2f} % of probe pixels)")
    if not architecture:
        return found(None, "none: no --checkpoint and no architecture in a manifest, so no torch rows and no naive baseline")
    torch.manual_seed(seed)
    network = MultiTaskUNet(**{k: v for k, v in architecture.items() if k != "name"}).eval()
    return found(network, "random (architecture of the manifest)")


def _same_architecture(checkpoint_model: dict, manifest_architecture: dict | None) -> bool:
    """The checkpoint's network has the layer widths and conv types the manifest describes."""
    if not manifest_architecture:
        return False
    def plain(value):  # a checkpoint holds tuples where the JSON manifest holds lists
        return list(value) if isinstance(value, (list, tuple)) else value

    defaults = {"full_input_conv": False, "signed_features": False}  # older checkpoints and manifests lack them
    return all(plain(checkpoint_model.get(key, defaults.get(key)))
               == plain(manifest_architecture.get(key, defaults.get(key)))
               for key in ("widths", "separable_from", "decoder_separable_from", "full_input_conv", "signed_features"))


def manifest_checkpoint(manifest: dict) -> Path | None:
    """The training run's best.pt named by the manifest (training.config.run), if it exists here."""
    run = manifest.get("training", {}).get("config", {}).get("run", {})
    if not run.get("name"):
        return None
    relative = Path(run.get("out_dir", "runs")) / run["name"] / "best.pt"
    for base in (REPO, Path.cwd()):
        if (base / relative).is_file():
            return base / relative
    return None


def label_agreement(network, onnx_path: Path, batch) -> float:
    """Fraction of seg labels on which the torch network and the ONNX file agree for `batch`."""
    import torch

    from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend

    with torch.inference_mode():
        labels = network(torch.from_numpy(batch))[0].argmax(dim=1).numpy()
    with OnnxRuntimeBackend(onnx_path, ["CPUExecutionProvider"], threads=1) as session:
        return float(np.mean(session.infer(batch).seg_labels == labels))


def onnx_at_size(source: Path, out_path: Path, box: tuple[int, int]) -> Path:
    """The same graph and weights for `[N, 1, H, W]` input (and `[N, H, W]` labels): a square model
    gets those declared shapes; a fitted-box model keeps its symbolic ones and gets long side
    max(H, W) in its metadata, so that it takes the fitted boxes of that size."""
    import onnx

    height, width = box
    graph = onnx.load(str(source))
    geometry = {prop.key: prop for prop in graph.metadata_props}
    if "input_stride" in geometry:
        geometry["input_size"].value = str(max(height, width))
        onnx.save(graph, str(out_path))
        return out_path
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    for output in graph.graph.output:
        if output.name == "seg_labels":
            out_dims = output.type.tensor_type.shape.dim
            out_dims[1].dim_value, out_dims[2].dim_value = height, width
    del graph.graph.value_info[:]  # intermediate shapes of the old size; ORT infers them again
    onnx.save(graph, str(out_path))
    return out_path


def write_random_model(out_dir: Path, widths=(16, 32, 64, 128, 256), separable_from: int = 1, size: int = 256,
                       seed: int = 0) -> Path:
    """A random-weight MultiTaskUNet exported with a manifest beside it (before the shipped model exists)."""
    import torch

    from edge_fetal.model.unet import MultiTaskUNet, count_gflops
    from export.onnx_export import export_onnx

    torch.manual_seed(seed)
    architecture = {"widths": list(widths), "separable_from": separable_from}
    model = MultiTaskUNet(**architecture).eval()
    path = export_onnx(model, Path(out_dir) / "fetal_mtl.onnx", size)
    manifest = {"model": {"file": path.name, "input": {"shape": ["N", 1, size, size]},
                          "gflops_per_frame": count_gflops(model, size), "architecture": {"name": "MultiTaskUNet", **architecture}},
                "note": "random weights, written by edge_fetal.bench.models.write_random_model"}
    (path.parent / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return path
