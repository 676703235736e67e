"""The shipped network's torch weights, beside the ONNX file, so that the torch backend (a CUDA GPU
without TensorRT, the benchmark's torch rows) runs the shipped model and not random weights.

`edge-fetal export onnx` writes them from the training checkpoint it exports. For a model whose
checkpoint is gone, `python -m export.torch_weights` recovers them from the ONNX file itself: the
exporter folded each BatchNorm into the convolution before it, so the convolution takes the folded
kernel and the BatchNorm becomes the identity plus the folded bias. In eval mode the network then
computes what the ONNX graph computes (checked with the export's parity test before anything is
written). Such weights serve inference only: trained as they are, the BatchNorms would learn new
statistics and change what the network computes, so `run.init_from` refuses this file and a
training run starts from a training checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge_fetal.errors import EdgeFetalError

TORCH_WEIGHTS_SUFFIX = ".pt"


def torch_weights_path(onnx_path: str | Path) -> Path:
    """`engines/fetal_mtl.pt` for `engines/fetal_mtl.onnx`."""
    return Path(onnx_path).with_suffix(TORCH_WEIGHTS_SUFFIX)


def save_torch_weights(model, config: dict, path: str | Path, source: str) -> Path:
    """The network's state dict with the config it is built from, in the training checkpoint's
    layout (`model`, `config`), so `load_checkpoint_model` reads it; no optimiser state."""
    import torch

    path = Path(path)
    torch.save({"model": model.state_dict(), "config": config, "source": source}, path)
    return path


def manifest_entry(weights_path: Path, onnx_path: Path, source: str, parity: dict) -> dict:
    """What the manifest records of the weights: file, checksum, the ONNX file they match, and how."""
    from edge_fetal.runtime.engine_manifest import sha256_of

    return {"file": weights_path.name, "sha256": sha256_of(weights_path), "bytes": weights_path.stat().st_size,
            "onnx_sha256": sha256_of(onnx_path), "source": source, "parity": parity}


def recover_from_onnx(onnx_path: str | Path, architecture: dict):
    """A `MultiTaskUNet` of `architecture` (the manifest's) carrying the ONNX file's weights, in eval mode.

    Convolutions are matched to the graph's Conv nodes in the order the network calls them (the
    order the exporter traced them in); every kernel's shape must match, or this raises.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from edge_fetal.model.unet import MultiTaskUNet

    graph = onnx.load(str(onnx_path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    model = MultiTaskUNet(**{k: v for k, v in architecture.items() if k != "name"}).eval()
    convs = _modules_in_call_order(model, (nn.Conv2d, nn.Linear))
    nodes = [node for node in graph.node if node.op_type in ("Conv", "Gemm")]
    if len(nodes) != len(convs):
        raise EdgeFetalError(f"{onnx_path} has {len(nodes)} Conv/Gemm nodes, the architecture {len(convs)} layers")
    following_norm = _norm_after_each_conv(model)
    with torch.no_grad():
        for module, node in zip(convs, nodes):
            kernel, bias = weights[node.input[1]], weights[node.input[2]]
            if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
                kernel = kernel.T
            if tuple(kernel.shape) != tuple(module.weight.shape):
                raise EdgeFetalError(f"{node.name}: kernel {kernel.shape} does not fit {module} {tuple(module.weight.shape)}")
            module.weight.copy_(torch.from_numpy(np.array(kernel)))
            norm = following_norm.get(module)
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(np.array(bias)))
            elif norm is not None:  # the folded BatchNorm: identity scale, the folded bias as its shift
                norm.weight.fill_(1.0)
                norm.bias.copy_(torch.from_numpy(np.array(bias)))
                norm.running_mean.zero_()
                norm.running_var.fill_(1.0 - norm.eps)
            else:
                raise EdgeFetalError(f"{node.name} has a bias, but {module} has neither a bias nor a BatchNorm after it")
        for name, buffer in model.named_buffers():  # the input normalisation stays a BatchNorm node in the graph
            if f"model.{name}" in weights:
                buffer.copy_(torch.from_numpy(np.array(weights[f"model.{name}"])))
    return model


def _modules_in_call_order(model, kinds: tuple) -> list:
    """The modules of `kinds` in the order one forward pass calls them."""
    import torch

    called: list = []
    hooks = [m.register_forward_hook(lambda module, *_: called.append(module))
             for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, model.size_multiple, model.size_multiple))
    finally:
        for hook in hooks:
            hook.remove()
    return called


def _norm_after_each_conv(model) -> dict:
    """{convolution: the BatchNorm2d that follows it in the same Sequential}."""
    from torch import nn

    pairs = {}
    for container in model.modules():
        if isinstance(container, nn.Sequential):
            children = list(container)
            for first, second in zip(children, children[1:]):
                if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
                    pairs[first] = second
    return pairs


def main(argv: list[str] | None = None) -> int:
    """Recover the shipped ONNX file's torch weights, check them, write them and record them."""
    from edge_fetal.engines import default_model_path, load_manifest, manifest_path
    from export.manifest import write_manifest
    from export.parity import check_parity, parity_frames, parity_real_images

    parser = argparse.ArgumentParser(prog="python -m export.torch_weights", description=main.__doc__)
    parser.add_argument("--onnx", type=Path, default=None, help="the ONNX file (default: the shipped model)")
    args = parser.parse_args(argv)
    onnx_path = args.onnx or default_model_path()
    manifest = load_manifest(onnx_path)
    architecture = manifest.get("model", {}).get("architecture")
    config = manifest.get("training", {}).get("config")
    if not architecture or not config:
        raise EdgeFetalError(f"{manifest_path(onnx_path)} names no model.architecture or training.config")
    model = recover_from_onnx(onnx_path, architecture)
    frames, real_count = parity_frames(parity_real_images(24))
    parity = check_parity(model, onnx_path, frames, real_count)
    print(parity.describe())
    if not parity.passed:
        raise EdgeFetalError("the recovered weights do not compute what the ONNX file computes; nothing was written")
    source = (f"recovered from {onnx_path.name} (python -m export.torch_weights): each BatchNorm folded into "
              "the convolution before it by the exporter, kept as the identity plus the folded bias")
    out = save_torch_weights(model, config, torch_weights_path(onnx_path), source)
    manifest["torch_weights"] = manifest_entry(out, onnx_path, source, parity.as_dict())
    write_manifest(manifest_path(onnx_path), manifest)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and its entry in {manifest_path(onnx_path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
