"""The backend interface: a batch of preprocessed frames in, seg labels and plane logits out.

Every backend returns the same names and dtypes for the same frame, whatever runtime runs the
model, so the stages after inference never know which one is in use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from edge_fetal.calibration import TYPICAL_SOURCE_HW, Letterbox, fitted_box, letterbox
from edge_fetal.errors import BackendError

PLANES = ("head", "abdomen", "femur", "other")
SEG_CLASSES = ("background", "head", "abdomen", "femur")
STRUCTURE_LABEL = {"head": 1, "abdomen": 2, "femur": 3}


@dataclass(frozen=True)
class ModelOutputs:
    """`seg_labels` uint8 `[N, H, W]` (0 background, 1 head, 2 abdomen, 3 femur); `plane_logits` float32 `[N, 4]`."""

    seg_labels: np.ndarray
    plane_logits: np.ndarray


class Backend(ABC):
    """One loaded model on one runtime. Use as a context manager, or call `close()`."""

    name: str = "backend"
    # True when `infer` may be called from several threads at once, each call running on its
    # caller's thread (ONNX Runtime on the CPU): offline runs then infer two frames side by side.
    parallel_calls: bool = False
    # None: the model takes only its square `[N, 1, S, S]` input. k: it takes any H, W that are
    # multiples of k up to S, and the engine feeds each source its fitted box (no padding rows).
    input_stride: int | None = None

    @property
    @abstractmethod
    def input_size(self) -> int:
        """S: the side of a square model input, the long side of a fitted one."""

    def letterbox_for(self, src_hw: tuple[int, int]) -> Letterbox:
        """How a source frame of `src_hw` goes into this model's input."""
        if self.input_stride is None:
            return letterbox(src_hw, self.input_size)
        return letterbox(src_hw, fitted_box(src_hw, self.input_size, self.input_stride))

    def warm_up(self, src_hw: tuple[int, int] = TYPICAL_SOURCE_HW) -> None:
        """One call on a blank frame of `src_hw`, so that start-up work is paid when the backend opens.

        A GPU runtime's first call creates its library handles, loads its kernels and plans its
        convolutions for the input shape (2.5 s with torch on an H200, measured): left to the first
        live frame, that frame is late and every frame behind it queues. GPU backends call this
        when they open, on the thread that will run every later call.
        """
        box_h, box_w = self.letterbox_for(src_hw).model_hw
        self.infer(np.zeros((1, 1, box_h, box_w), np.float32))

    def check_input(self, batch: np.ndarray) -> None:
        """Refuse a batch this model cannot take, naming the shape it expected."""
        size, stride = self.input_size, self.input_stride
        if batch.ndim == 4 and batch.shape[0] >= 1 and batch.shape[1] == 1:
            h, w = batch.shape[2:]
            if (h, w) == (size, size) or (stride and h <= size and w <= size and not h % stride and not w % stride):
                return
        wanted = f"[N, 1, {size}, {size}]" if stride is None else f"[N, 1, H, W] with H, W multiples of {stride} up to {size}"
        raise BackendError(f"expected a float32 {wanted} batch with N >= 1, got {batch.shape}")

    @abstractmethod
    def infer(self, batch: np.ndarray) -> ModelOutputs:
        """Run the model on float32 `[N, 1, H, W]` frames scaled to [0, 1] (`letterbox_for`).

        The returned arrays belong to the caller: the stream measures frame N while the next
        call runs on frame N+1. Calls may come from a thread other than the one that opened the
        backend, one at a time unless `parallel_calls`.
        """

    def close(self) -> None:
        """Release the runtime's resources (sessions, device memory)."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of `[N, K]` logits, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
