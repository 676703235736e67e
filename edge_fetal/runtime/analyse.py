"""One frame through the model and the geometry: preprocess → infer → mask in source px → measure.

Shared by `eval` and the stream, so both measure exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.biometry import Measurement, measure_femur
from edge_fetal.biometry.mask import RegionCounts, boundary_points, main_component
from edge_fetal.biometry.measure import measure_ellipse_outline
from edge_fetal.calibration import Letterbox
from edge_fetal.runtime.backend import PLANES, STRUCTURE_LABEL, Backend, softmax


@dataclass(frozen=True)
class FrameAnalysis:
    """What the engine concluded about one frame."""

    plane: str
    plane_probabilities: dict[str, float]
    measurement: Measurement | None  # None for "other"
    labels_model: np.ndarray  # uint8 [H, W] seg labels at model resolution
    mapping: Letterbox


def preprocess(frame_gray: np.ndarray, mapping: Letterbox) -> np.ndarray:
    """8-bit grey frame → float32 `[1, 1, H, W]` in [0, 1], letterboxed (aspect kept), shrunk the fast way."""
    return (mapping.to_model(frame_gray, fast_shrink=True).astype(np.float32) * (1.0 / 255.0))[None, None]


@dataclass(frozen=True)
class SourceCrop:
    """Part of a structure mask in source pixels: `mask` covers columns x0.. and rows y0.. of the frame."""

    mask: np.ndarray
    x0: int
    y0: int


def structure_crop_in_source(labels_model: np.ndarray, label: int, mapping: Letterbox, margin_model_px: int = 2) -> SourceCrop:
    """One class's mask mapped back to source pixels with a smooth (bilinear) outline, around the class only.

    Bilinear up-sampling then a 0.5 threshold puts the outline half-way between inside and outside
    model pixels, the convention the geometry assumes. Only the class's bounding box (plus a
    margin of background) is up-sampled: a crop edge is an image edge or has background beside it,
    so "touches the border" keeps its meaning, at a fraction of the full-frame cost.
    """
    height, width = mapping.src_hw
    inside = _class_in_content(labels_model, label, mapping).view(np.uint8)
    left, top, box_w, box_h = cv2.boundingRect(inside)
    if box_w == 0:
        return SourceCrop(np.zeros((3, 3), bool), 0, 0)
    scale_x, scale_y = mapping.scale_x, mapping.scale_y
    x0 = max(int((left - margin_model_px + 0.5) / scale_x - 0.5), 0)
    x1 = min(int((left + box_w - 1 + margin_model_px + 0.5) / scale_x + 0.5) + 1, width)
    y0 = max(int((top - margin_model_px + 0.5) / scale_y - 0.5), 0)
    y1 = min(int((top + box_h - 1 + margin_model_px + 0.5) / scale_y + 0.5) + 1, height)
    # source pixel x ↔ content coordinate scale_x * (x + 0.5) - 0.5, as cv2.resize maps it
    to_content = np.array([[scale_x, 0.0, scale_x * (x0 + 0.5) - 0.5], [0.0, scale_y, scale_y * (y0 + 0.5) - 0.5]])
    upsampled = cv2.warpAffine(inside.astype(np.float32), to_content, (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return SourceCrop(upsampled >= 0.5, x0, y0)


def structure_mask_in_source(labels_model: np.ndarray, label: int, mapping: Letterbox) -> np.ndarray:
    """The same mask over the whole source frame (for Dice against a full-frame truth)."""
    crop = structure_crop_in_source(labels_model, label, mapping)
    mask = np.zeros(mapping.src_hw, bool)
    if crop.mask.any():
        mask[crop.y0 : crop.y0 + crop.mask.shape[0], crop.x0 : crop.x0 + crop.mask.shape[1]] = crop.mask
    return mask


def outline_in_source(labels_model: np.ndarray, label: int, mapping: Letterbox) -> tuple[RegionCounts, np.ndarray]:
    """One class's main region at model resolution: its counts (areas in source pixels) and its
    sub-pixel outline mapped to source pixels, float32 `[K, 2]` (x, y).

    On the edge between an inside and an outside model pixel, the bilinearly up-sampled mask
    (`structure_crop_in_source`) crosses 0.5 exactly half-way, which is where the crack points of
    the model-resolution region lie: the same outline, found without building the source-size
    mask. A head is measured this way in ~0.6 instead of ~1.8 ms (benchmarks/results/PROFILE.md).
    """
    component = main_component(_class_in_content(labels_model, label, mapping))
    points_model = boundary_points(component) + np.array([mapping.pad_x, mapping.pad_y], np.float32)
    points_source = mapping.points_to_source(points_model).astype(np.float32)
    return component.counts(1.0 / (mapping.scale_x * mapping.scale_y)), points_source


def _class_in_content(labels_model: np.ndarray, label: int, mapping: Letterbox) -> np.ndarray:
    """Where the model labelled `label`, over the letterbox content only (padding left out), bool."""
    content_h, content_w = mapping.content_hw
    return labels_model[mapping.pad_y : mapping.pad_y + content_h, mapping.pad_x : mapping.pad_x + content_w] == label


def measure_labels(labels_model: np.ndarray, plane: str, mapping: Letterbox, mm_per_px: float | None) -> Measurement | None:
    """Measure the structure of `plane` from model labels, in source pixels.

    A head or abdomen outline is fitted on the model-resolution outline (`outline_in_source`); a
    femur, a few model pixels wide, is measured on its mask up-sampled to source pixels, where
    its width and centreline are resolved.
    """
    if plane not in STRUCTURE_LABEL:
        return None
    if plane == "femur":
        crop = structure_crop_in_source(labels_model, STRUCTURE_LABEL[plane], mapping)
        return measure_femur(crop.mask, mm_per_px).shifted(crop.x0, crop.y0)
    region, outline_xy = outline_in_source(labels_model, STRUCTURE_LABEL[plane], mapping)
    return measure_ellipse_outline(plane, region, outline_xy, mm_per_px)


def decide_plane(plane_logits: np.ndarray) -> tuple[str, dict[str, float]]:
    """The most probable plane of one frame's logits, and every plane's probability."""
    probabilities = softmax(np.asarray(plane_logits, dtype=np.float64))
    return PLANES[int(np.argmax(probabilities))], dict(zip(PLANES, probabilities.tolist()))


def analyse_frame(frame_gray: np.ndarray, backend: Backend, mm_per_px: float | None) -> FrameAnalysis:
    """Classify, segment and measure one frame."""
    mapping = backend.letterbox_for(frame_gray.shape[:2])
    outputs = backend.infer(preprocess(frame_gray, mapping))
    plane, probabilities = decide_plane(outputs.plane_logits[0])
    labels = outputs.seg_labels[0]
    return FrameAnalysis(plane, probabilities, measure_labels(labels, plane, mapping, mm_per_px), labels, mapping)
