"""One frame through the model and the geometry: preprocess → infer → mask in source px → measure.

Shared by `eval` and the stream, so both measure exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.biometry import MEASURE_BY_STRUCTURE, Measurement
from edge_fetal.calibration import Letterbox, letterbox
from edge_fetal.runtime.backend import PLANES, STRUCTURE_LABEL, Backend, softmax


@dataclass(frozen=True)
class FrameAnalysis:
    """What the engine concluded about one frame."""

    plane: str
    plane_probabilities: dict[str, float]
    measurement: Measurement | None  # None for "other"
    labels_model: np.ndarray  # uint8 [S, S] seg labels at model resolution
    mapping: Letterbox


def preprocess(frame_gray: np.ndarray, mapping: Letterbox) -> np.ndarray:
    """8-bit grey frame → float32 `[1, 1, S, S]` in [0, 1], letterboxed (aspect kept)."""
    return (mapping.to_model(frame_gray).astype(np.float32) * (1.0 / 255.0))[None, None]


def structure_mask_in_source(labels_model: np.ndarray, label: int, mapping: Letterbox) -> np.ndarray:
    """The binary mask of one class mapped back to source pixels with a smooth (bilinear) outline.

    Bilinear up-sampling then a 0.5 threshold puts the outline half-way between inside and
    outside model pixels, the same convention the geometry assumes.
    """
    height, width = mapping.src_hw
    content_h, content_w = mapping.content_hw
    region = labels_model[mapping.pad_y : mapping.pad_y + content_h, mapping.pad_x : mapping.pad_x + content_w]
    binary = (region == label).astype(np.float32)
    upsampled = cv2.resize(binary, (width, height), interpolation=cv2.INTER_LINEAR)
    return upsampled >= 0.5


def measure_labels(labels_model: np.ndarray, plane: str, mapping: Letterbox, mm_per_px: float | None) -> Measurement | None:
    """Measure the structure of `plane` from model labels, in source pixels."""
    if plane not in STRUCTURE_LABEL:
        return None
    mask = structure_mask_in_source(labels_model, STRUCTURE_LABEL[plane], mapping)
    return MEASURE_BY_STRUCTURE[plane](mask, mm_per_px)


def analyse_frame(frame_gray: np.ndarray, backend: Backend, mm_per_px: float | None) -> FrameAnalysis:
    """Classify, segment and measure one frame."""
    mapping = letterbox(frame_gray.shape[:2], backend.input_size)
    outputs = backend.infer(preprocess(frame_gray, mapping))
    probabilities = softmax(outputs.plane_logits[0])
    plane = PLANES[int(np.argmax(probabilities))]
    labels = outputs.seg_labels[0]
    return FrameAnalysis(
        plane, dict(zip(PLANES, probabilities.tolist())), measure_labels(labels, plane, mapping, mm_per_px), labels, mapping,
    )
