"""ONNX Runtime backend: CPU here, CUDA / TensorRT execution providers where installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_fetal.errors import BackendError
from edge_fetal.runtime.backend import Backend, ModelOutputs


class OnnxRuntimeBackend(Backend):
    """Runs the exported model (`image` → `seg_labels`, `plane_logits`) in an ORT session."""

    name = "onnxruntime"

    def __init__(self, model_path: str | Path, providers: list[str] | None = None, threads: int | None = None):
        import onnxruntime as ort

        model_path = Path(model_path)
        if not model_path.is_file():
            raise BackendError(f"model file not found: {model_path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(str(model_path), options, providers=chosen)
        except Exception as error:  # ORT raises its own types for corrupt or incompatible files
            raise BackendError(f"ONNX Runtime cannot load {model_path}: {error}") from None
        self.providers = self._session.get_providers()
        shape = self._session.get_inputs()[0].shape
        self._input_size = int(shape[-1]) if isinstance(shape[-1], int) else 256

    @property
    def input_size(self) -> int:
        return self._input_size

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        seg_labels, plane_logits = self._session.run(["seg_labels", "plane_logits"], {"image": batch})
        return ModelOutputs(seg_labels.astype(np.uint8, copy=False), plane_logits.astype(np.float32, copy=False))
