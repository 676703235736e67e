"""`edge-fetal export onnx | int8 | tensorrt`: the command-line side of the conversions (cli.py
parses; this runs and prints)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edge_fetal.errors import EdgeFetalError


def run_onnx(args: argparse.Namespace) -> int:
    """Checkpoint → ONNX, checked against torch on real and simulated frames; the manifest and the
    torch weights beside the ONNX file only if they agree."""
    from export.checkpoint import load_model
    from export.manifest import model_manifest, write_manifest
    from export.onnx_export import OPSET, export_onnx
    from export.parity import check_parity, parity_frames, parity_real_images
    from export.torch_weights import manifest_entry, save_torch_weights, torch_weights_path
    from edge_fetal.engines import manifest_path
    from edge_fetal.model.load import trained_input_stride
    from edge_fetal.model.unet import count_gflops, count_params, offset_seg_logit

    model, checkpoint = load_model(args.checkpoint)
    offsets = {"head": args.head_logit_offset, "femur": args.femur_logit_offset}
    for structure, offset in offsets.items():
        offset_seg_logit(model, structure, offset)  # the torch weights and the ONNX graph both carry it
    data = checkpoint["config"]["data"]
    image_size, trained_hw = data["image_size"], tuple(data.get("input_hw") or ())
    stride = trained_input_stride(model, checkpoint)  # None: a fixed square graph
    out = export_onnx(model, args.out, image_size, input_stride=stride)
    frames, real_count = parity_frames(parity_real_images(args.parity_frames))
    parity = check_parity(model, out, frames, real_count)
    print(parity.describe())
    if not parity.passed:
        raise EdgeFetalError(f"the exported {out} does not match the torch model; the manifest was not written")
    data_file = Path(args.checkpoint).with_name("data.json")
    data_description = json.loads(data_file.read_text()) if data_file.is_file() else {}
    typical_hw = trained_hw or (image_size, image_size)
    manifest = model_manifest(out, image_size, stride, typical_hw, OPSET, count_gflops(model, typical_hw),
                              count_params(model), checkpoint, data_description)
    manifest["model"]["parity"] = parity.as_dict()
    source = f"the training checkpoint {args.checkpoint} (epoch {checkpoint.get('epoch')})"
    for structure, offset in offsets.items():
        manifest["model"][f"{structure}_logit_offset"] = offset
        if offset:
            source += f", the {structure} class's logit offset by {offset:+g}"
    weights = save_torch_weights(model, checkpoint["config"], torch_weights_path(out), source)
    manifest["torch_weights"] = manifest_entry(weights, out, source, parity.as_dict())
    write_manifest(manifest_path(out), manifest)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {manifest['model']['gflops_per_frame']:.2f} GFLOP/frame)"
          f", its torch weights {weights.name} and {manifest_path(out)}")
    return 0


def run_int8(args: argparse.Namespace) -> int:
    """ONNX → static INT8 (QDQ), calibrated on real HC18 and simulated frames."""
    from export.int8 import quantise_int8
    from export.parity import parity_frames, parity_real_images

    frames, real_count = parity_frames(parity_real_images(args.calibration_frames), simulated_per_plane=12, seed=4242)
    out = quantise_int8(args.onnx, args.out, frames)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), calibrated on {real_count} real HC18 + "
          f"{len(frames) - real_count} simulated frames; measure it with `edge-fetal eval --model {out}` "
          f"and `edge-fetal bench` before shipping it")
    return 0


def run_tensorrt(args: argparse.Namespace) -> int:
    """ONNX → TensorRT FP16 engine with its manifest, for the GPU this runs on."""
    from edge_fetal.runtime.select import default_engine_path
    from export.tensorrt_build import build_engine

    started = time.monotonic()
    build_engine(args.onnx, args.out or default_engine_path(args.onnx), fp16=not args.fp32, max_batch=args.max_batch,
                 opt_batch=args.opt_batch, workspace_mb=args.workspace_mb, timing_cache_path=args.timing_cache or None)
    print(f"built in {time.monotonic() - started:.0f} s")
    return 0
