"""Static INT8 quantisation for CPU edge boxes (ONNX Runtime QDQ, per-channel weights).

Calibrated on real HC18 and simulated frames of every plane. The plane head (Gemm), the final
ArgMax/Cast and the input normalisation stay in float: they are tiny and decide the output.
Whether INT8 is kept is decided by measurement (speed and accuracy), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from edge_fetal.calibration import Letterbox
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge_fetal.runtime.analyse import preprocess


class _FrameReader:
    """ONNX Runtime's calibration-data protocol over preprocessed frames."""

    def __init__(self, frames: list[np.ndarray], letterbox_for: Callable[[tuple[int, int]], Letterbox]):
        self._batches = iter([{"image": preprocess(frame, letterbox_for(frame.shape))} for frame in frames])

    def get_next(self):
        return next(self._batches, None)


def float_nodes_to_keep(onnx_path: str | Path) -> list[str]:
    """Names of the nodes left in float: the plane head, the label ArgMax/Cast and the input norm."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    keep = [node.name for node in graph.node if node.op_type in ("Gemm", "ArgMax", "Cast", "Flatten", "GlobalAveragePool")]
    first = graph.node[0]
    if first.op_type == "BatchNormalization":
        keep.append(first.name)
    return keep


def quantise_int8(onnx_path: str | Path, out_path: str | Path, frames: list[np.ndarray]) -> Path:
    """Write a QDQ INT8 copy of `onnx_path`, calibrated (min-max) on `frames`, each letterboxed as
    the float model's backend would feed it."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    prepared = out_path.with_suffix(".prep.onnx")
    with OnnxRuntimeBackend(onnx_path, providers=["CPUExecutionProvider"]) as backend:
        letterbox_for = backend.letterbox_for
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    try:
        quantize_static(
            str(prepared), str(out_path), _FrameReader(frames, letterbox_for),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes_to_keep(prepared),
        )
    finally:
        prepared.unlink(missing_ok=True)
    _copy_metadata(onnx_path, out_path)
    return out_path


def _copy_metadata(source: str | Path, target: Path) -> None:
    """The float model's metadata (classes, input geometry) onto the quantised copy, which
    the quantiser writes without it."""
    import onnx

    float_model, quantised = onnx.load(str(source)), onnx.load(str(target))
    present = {p.key for p in quantised.metadata_props}
    for prop in float_model.metadata_props:
        if prop.key not in present:
            quantised.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(quantised, str(target))


MAX_HC_MAE_LOSS_MM = 0.3
MAX_PLANE_ACCURACY_LOSS = 0.002


def int8_verdict(fp32: dict, int8: dict, fp32_p50_ms: float, int8_p50_ms: float) -> tuple[bool, str]:
    """Ship INT8 only when it is faster here and costs ≤ 0.3 mm HC MAE and ≤ 0.2 % plane accuracy.

    `fp32` / `int8`: {"hc_mae_mm": ..., "plane_accuracy": ...} measured on the same evaluation set.
    Returns (ship it?, the measured reason in one sentence).
    """
    hc_loss = int8["hc_mae_mm"] - fp32["hc_mae_mm"]
    plane_loss = fp32["plane_accuracy"] - int8["plane_accuracy"]
    figures = (f"p50 {int8_p50_ms:.1f} vs {fp32_p50_ms:.1f} ms, HC MAE {hc_loss:+.2f} mm, "
               f"plane accuracy {-plane_loss * 100:+.2f} %")
    if int8_p50_ms >= fp32_p50_ms:
        return False, f"not shipped: INT8 is not faster on this machine ({figures})"
    if hc_loss > MAX_HC_MAE_LOSS_MM or plane_loss > MAX_PLANE_ACCURACY_LOSS:
        return False, f"not shipped: INT8 loses too much accuracy ({figures})"
    return True, f"shipped: INT8 is faster at an accepted accuracy cost ({figures})"
