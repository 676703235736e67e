"""ONNX → TensorRT engine (FP16, plane head kept in FP32), with its manifest beside it.

Run on the device that will use the engine (a Jetson): an engine holds kernels for one GPU
architecture and one TensorRT version. `build_engine` writes `<engine>` and `<engine>.json`
(TensorRT version, GPU, ONNX sha256, precision, optimisation profile, build date) so that the
runtime refuses an engine built elsewhere instead of crashing or silently mis-running.

The plane head (global average pool → flatten → linear) stays in FP32: it averages the whole
bottleneck, so FP16 rounding there moves the plane probabilities that gate every measurement,
while the convolutions, which hold almost all of the time, run in FP16.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from edge_fetal.errors import BackendError, EdgeFetalError
from edge_fetal.runtime.cuda_memory import cuda_device
from edge_fetal.runtime.engine_manifest import rebuild_command
from edge_fetal.runtime.tensorrt_backend import import_tensorrt
from export.engine_manifest import engine_manifest, write_engine_manifest

INPUT_NAME = "image"
PLANE_OUTPUT = "plane_logits"
# Where the walk back from `plane_logits` stops: the global pool that starts the plane head is
# included; a convolution (the bottleneck, which feeds the decoder too) never is.
HEAD_START_KINDS = ("POOLING", "REDUCE")
BACKBONE_KINDS = ("CONVOLUTION", "DECONVOLUTION")


@dataclass(frozen=True)
class LayerInfo:
    """What the plane-head walk needs of one network layer: its floating-point tensors by name."""

    name: str
    kind: str  # trt.LayerType name: "CONVOLUTION", "REDUCE", "MATRIX_MULTIPLY", ...
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def plane_head_layers(layers: Sequence[LayerInfo], output_name: str = PLANE_OUTPUT) -> list[str]:
    """Names of the layers between the bottleneck's global pool and `output_name`, in network order.

    Walks producers back from the output through floating-point tensors (shape arithmetic is
    not followed), including the first pooling / reduce layer met on each path and stopping there.
    """
    producer = {tensor: layer for layer in layers for tensor in layer.outputs}
    if output_name not in producer:
        raise EdgeFetalError(f"the network has no output tensor {output_name!r}: export the model per DESIGN.md's contract")
    chosen: set[str] = set()
    pending = [producer[output_name]]
    while pending:
        layer = pending.pop()
        if layer.name in chosen or layer.kind in BACKBONE_KINDS:
            continue
        chosen.add(layer.name)
        if layer.kind not in HEAD_START_KINDS:
            pending.extend(producer[t] for t in layer.inputs if t in producer)
    return [layer.name for layer in layers if layer.name in chosen]


def _layer_infos(trt, network) -> list[LayerInfo]:
    floating = (trt.float32, trt.float16)

    def float_names(tensors) -> tuple[str, ...]:
        return tuple(t.name for t in tensors if t is not None and t.dtype in floating)

    infos = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        infos.append(LayerInfo(
            layer.name, layer.type.name,
            float_names(layer.get_input(j) for j in range(layer.num_inputs)),
            float_names(layer.get_output(j) for j in range(layer.num_outputs)),
        ))
    return infos


def _keep_fp32(trt, network, names: Sequence[str]) -> list[str]:
    """Pin the named layers (those with floating-point outputs) to FP32; returns the ones pinned."""
    wanted, pinned = set(names), []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if layer.name not in wanted or layer.type == trt.LayerType.CONSTANT or not outputs \
                or any(t.dtype not in (trt.float32, trt.float16) for t in outputs):
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        pinned.append(layer.name)
    return pinned


def profile_shapes(onnx_path: Path, declared: tuple[int, ...], opt_batch: int,
                   max_batch: int) -> tuple[dict[str, tuple[int, ...]], int | None]:
    """The optimisation profile's min / opt / max input shapes, and the stride of a fitted-box model.

    A square model (declared `(-1, 1, S, S)`) varies only in batch. A model that takes fitted
    boxes takes any multiple of its stride up to S², tuned for the box of an 800x540 frame.
    """
    from edge_fetal.calibration import TYPICAL_SOURCE_HW, fitted_box
    from edge_fetal.runtime.onnxruntime_backend import probe_geometry

    size, stride = probe_geometry(onnx_path)
    if stride is None:
        return {key: (batch, *declared[1:]) for key, batch in (("min", 1), ("opt", opt_batch), ("max", max_batch))}, None
    typical = fitted_box(TYPICAL_SOURCE_HW, size, stride)
    return {"min": (1, 1, stride, stride), "opt": (opt_batch, 1, *typical), "max": (max_batch, 1, size, size)}, stride


def build_engine(onnx_path: str | Path, engine_path: str | Path, *, fp16: bool = True, max_batch: int = 4,
                 opt_batch: int = 1, workspace_mb: int = 1024, timing_cache_path: str | Path | None = None,
                 fp32_layers: Sequence[str] | None = None, log: Callable[[str], None] = print) -> Path:
    """Build and write the engine and its manifest; returns the engine path.

    fp32_layers: layer names kept in FP32 when `fp16`; None = the plane head (`plane_head_layers`).
    timing_cache_path: read if present, written after the build (makes rebuilds take seconds).
    """
    trt = import_tensorrt()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise EdgeFetalError(f"ONNX model not found: {onnx_path}")
    if not 1 <= opt_batch <= max_batch:
        raise EdgeFetalError(f"need 1 <= opt_batch <= max_batch, got opt_batch={opt_batch}, max_batch={max_batch}")
    gpu = cuda_device()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    shapes, stride = profile_shapes(onnx_path, tuple(network.get_input(0).shape), opt_batch, max_batch)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)

    pinned: list[str] = []
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        names = plane_head_layers(_layer_infos(trt, network)) if fp32_layers is None else list(fp32_layers)
        pinned = _keep_fp32(trt, network, names)
        if pinned:
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        log(f"FP16 engine; {len(pinned)} layer(s) kept in FP32: {', '.join(pinned) or 'none'}")

    cache_path = Path(timing_cache_path) if timing_cache_path else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    if cache_path:
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))

    manifest = engine_manifest(
        engine_path, onnx_path, trt_version=trt.__version__, gpu=gpu, precision="fp16" if fp16 else "fp32",
        profile={"input": INPUT_NAME, **{key: list(shape) for key, shape in shapes.items()}, "stride": stride},
        fp32_layers=pinned, workspace_mb=workspace_mb, timing_cache=str(cache_path) if cache_path else None,
    )
    manifest_file = write_engine_manifest(engine_path, manifest)
    log(f"wrote {engine_path} ({engine_path.stat().st_size / 1e6:.1f} MB) for {gpu.name} (sm {gpu.compute_capability}),"
        f" TensorRT {trt.__version__}, and {manifest_file}; rebuild with `{rebuild_command(onnx_path)}`")
    return engine_path
