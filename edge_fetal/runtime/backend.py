"""The backend interface: a batch of preprocessed frames in, seg labels and plane logits out.

Every backend returns the same names and dtypes for the same frame, whatever runtime runs the
model, so the stages after inference never know which one is in use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

PLANES = ("head", "abdomen", "femur", "other")
SEG_CLASSES = ("background", "head", "abdomen", "femur")
STRUCTURE_LABEL = {"head": 1, "abdomen": 2, "femur": 3}


@dataclass(frozen=True)
class ModelOutputs:
    """`seg_labels` uint8 `[N, S, S]` (0 background, 1 head, 2 abdomen, 3 femur); `plane_logits` float32 `[N, 4]`."""

    seg_labels: np.ndarray
    plane_logits: np.ndarray


class Backend(ABC):
    """One loaded model on one runtime. Use as a context manager, or call `close()`."""

    name: str = "backend"
    # True when `infer` may be called from several threads at once, each call running on its
    # caller's thread (ONNX Runtime on the CPU): offline runs then infer two frames side by side.
    parallel_calls: bool = False

    @property
    @abstractmethod
    def input_size(self) -> int:
        """Side S of the square model input `[N, 1, S, S]`."""

    @abstractmethod
    def infer(self, batch: np.ndarray) -> ModelOutputs:
        """Run the model on float32 `[N, 1, S, S]` frames scaled to [0, 1].

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
