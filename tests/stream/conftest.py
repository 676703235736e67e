"""Fakes for stream tests: a scripted backend (labels + plane logits per call) and in-memory frames."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from edge_fetal.biometry import Ellipse, rasterise_ellipse
from edge_fetal.calibration import letterbox
from edge_fetal.runtime.backend import PLANES, STRUCTURE_LABEL, Backend, ModelOutputs

SOURCE_HW = (240, 320)
MODEL_SIZE = 128
HEAD = Ellipse(160, 120, 70, 55, 15)
ABDOMEN = Ellipse(165, 118, 60, 52, -20)


class ScriptedBackend(Backend):
    """Call i returns the plane `script(i)` with probability ≈ `confidence`, and that plane's
    structure (head / abdomen ellipse, femur bar) as labels; "other" has no structure.

    `delay_s` makes inference slow; `fail_on` makes those calls raise RuntimeError.
    """

    name = "scripted"

    def __init__(self, script, source_hw=SOURCE_HW, delay_s: float = 0.0, fail_on=(), confidence: float = 0.98):
        self.script, self.source_hw, self.delay_s, self.fail_on = script, source_hw, delay_s, set(fail_on)
        self.calls = 0
        self.mapping = letterbox(source_hw, MODEL_SIZE)
        margin = np.log(confidence / (1 - confidence) * 3)  # softmax max ≈ confidence over 4 classes
        self.margin = float(margin)
        self._labels = {plane: self._draw(plane) for plane in PLANES}

    @property
    def input_size(self) -> int:
        return MODEL_SIZE

    def _draw(self, plane: str) -> np.ndarray:
        h, w = self.source_hw
        mask = np.zeros(self.source_hw, np.float32)
        if plane == "head":
            mask = rasterise_ellipse(self.source_hw, HEAD).astype(np.float32)
        elif plane == "abdomen":
            mask = rasterise_ellipse(self.source_hw, ABDOMEN).astype(np.float32)
        elif plane == "femur":
            mask[h // 2 - 4 : h // 2 + 4, w // 4 : 3 * w // 4] = 1.0
        labels = (self.mapping.to_model(mask) >= 0.5).astype(np.uint8)
        return labels * STRUCTURE_LABEL.get(plane, 0)

    def infer(self, batch: np.ndarray) -> ModelOutputs:
        assert batch.shape == (1, 1, MODEL_SIZE, MODEL_SIZE) and batch.dtype == np.float32
        i, self.calls = self.calls, self.calls + 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if i in self.fail_on:
            raise RuntimeError(f"scripted failure on call {i}")
        plane = self.script(i)
        logits = np.zeros((1, 4), np.float32)
        logits[0, PLANES.index(plane)] = self.margin
        return ModelOutputs(self._labels[plane][None], logits)


def head_then_abdomen(n_head: int):
    return lambda i: "head" if i < n_head else "abdomen"


@pytest.fixture
def grey_frames():
    """n textured grey frames of SOURCE_HW (content is irrelevant to the scripted backend)."""
    def make(n: int, hw=SOURCE_HW):
        rng = np.random.default_rng(0)
        base = rng.integers(20, 200, size=hw, dtype=np.uint8)
        return [np.roll(base, i, axis=1) for i in range(n)]
    return make


@pytest.fixture
def fakes():
    """The fakes above, for test modules (a conftest cannot be imported under --import-mode=importlib)."""
    return SimpleNamespace(ScriptedBackend=ScriptedBackend, HEAD=HEAD, ABDOMEN=ABDOMEN, head_then_abdomen=head_then_abdomen,
                           SOURCE_HW=SOURCE_HW)
