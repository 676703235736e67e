"""PyTorch backend: the eager network of a training checkpoint, on the CPU or a CUDA GPU.

For development and for GPUs without TensorRT: channels_last memory layout, FP16 on CUDA by
default, argmax on the device so that only uint8 labels come back. torch is imported inside
this module only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edge_fetal.errors import BackendError
from edge_fetal.runtime.backend import Backend, ModelOutputs

NO_TORCH = "the torch backend needs the `train` extra (pip install -e '.[train]'), which is not installed here"


def import_torch():
    try:
        import torch
    except ImportError:
        raise BackendError(NO_TORCH) from None
    return torch


def torch_cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device (False without torch)."""
    try:
        return import_torch().cuda.is_available()
    except BackendError:
        return False


class TorchBackend(Backend):
    """Runs a `MultiTaskUNet` (`image` → `seg_labels` uint8, `plane_logits` float32) in eager PyTorch.

    device: "cpu" or "cuda". fp16: None = FP16 on CUDA, FP32 on the CPU (FP16 is CUDA only).
    """

    name = "torch"

    def __init__(self, checkpoint_path: str | Path, device: str = "cpu", fp16: bool | None = None):
        import_torch()
        from edge_fetal.model.load import load_checkpoint_model, trained_input_stride

        if str(checkpoint_path).endswith(".onnx"):
            raise BackendError(f"the torch backend runs a training checkpoint (runs/NAME/best.pt), not {checkpoint_path}")
        model, checkpoint = load_checkpoint_model(checkpoint_path)
        self._setup(model, int(checkpoint["config"]["data"]["image_size"]), device, fp16,
                    trained_input_stride(model, checkpoint))

    @classmethod
    def from_model(cls, model, input_size: int, device: str = "cpu", fp16: bool | None = None,
                   input_stride: int | None = None) -> "TorchBackend":
        """Wrap an in-memory `MultiTaskUNet` (benchmarks with random weights, tests)."""
        backend = cls.__new__(cls)
        backend._setup(model, input_size, device, fp16, input_stride)
        return backend

    def _setup(self, model, input_size: int, device: str, fp16: bool | None, input_stride: int | None) -> None:
        torch = import_torch()
        if device not in ("cpu", "cuda"):
            raise BackendError(f"torch device must be 'cpu' or 'cuda', got {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError("torch sees no CUDA GPU here: use device 'cpu' or another backend")
        self.fp16 = device == "cuda" if fp16 is None else fp16
        if self.fp16 and device != "cuda":
            raise BackendError("FP16 inference in torch needs CUDA: use fp16=False on the CPU")
        self._torch, self.device, self._input_size = torch, torch.device(device), input_size
        self.input_stride = input_stride
        model = model.eval().to(self.device, memory_format=torch.channels_last)
        self._model = model.half() if self.fp16 else model
        # On CUDA every call runs on one thread of the backend's own: torch keeps its cuDNN
        # execution plans per thread, and planning this network took 2.5 s on an H200 for each
        # new thread (and each new input shape). The warm-up plans the typical shape on that thread.
        self._cuda_thread = None
        if self.device.type == "cuda":
            self._cuda_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-fetal-torch-cuda")
            try:
                self.warm_up()
            except BaseException:
                self.close()
                raise

    @property
    def input_size(self) -> int:
        return self._input_size

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        self.check_input(batch)
        if self._cuda_thread is not None:
            return self._cuda_thread.submit(self._run, batch).result()
        return self._run(batch)

    def _run(self, batch: np.ndarray) -> ModelOutputs:
        torch = self._torch
        with torch.inference_mode():
            image = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device, non_blocking=True)
            image = image.to(dtype=torch.float16 if self.fp16 else torch.float32, memory_format=torch.channels_last)
            seg_logits, plane_logits = self._model(image)
            labels = seg_logits.argmax(dim=1).to(torch.uint8)
            return ModelOutputs(labels.cpu().numpy(), plane_logits.float().cpu().numpy())

    def close(self) -> None:
        """Drop the model; on CUDA also return its cached memory to the driver."""
        self._model = None
        if self._cuda_thread is not None:
            self._cuda_thread.shutdown(wait=True)
            self._cuda_thread = None
            self._torch.cuda.empty_cache()
