"""Checks and geometry on binary structure masks: validation, the main component, its boundary.

The boundary is taken where it really is: half-way between an inside pixel centre and the
outside pixel centre next to it ("crack" points). Fitting the outer contour's pixel centres
instead reads the outline about half a pixel too large.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.errors import MaskError


@dataclass(frozen=True)
class MainComponent:
    """The largest connected region of a mask, holes filled, with what was left aside."""

    mask: np.ndarray  # bool, same shape as the input
    area_px: int
    components: int  # connected regions in the input mask
    second_area_px: int  # area of the next largest region (0 when there is one)
    touches_border: bool


def as_binary_mask(mask: np.ndarray) -> np.ndarray:
    """Validate a structure mask and return it as bool.

    Accepts bool, or integer masks holding only 0 and one other value (1 or 255 typically).
    Anything else is a caller error that would silently give wrong lengths, so it raises.
    """
    array = np.asarray(mask)
    if array.ndim != 2:
        raise MaskError(f"a structure mask must be 2-D (height, width), got shape {array.shape}")
    if min(array.shape) < 3:
        raise MaskError(f"a structure mask must be at least 3x3 pixels, got {array.shape}")
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise MaskError(f"a structure mask must be boolean or integer, got dtype {array.dtype}")
    values = np.unique(array)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:6])
        raise MaskError(f"a structure mask must hold 0 and one foreground value, got values {shown}")
    return array != 0


def main_component(mask: np.ndarray) -> MainComponent:
    """The largest 8-connected region of `mask` with its holes filled."""
    binary = as_binary_mask(mask)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if len(areas) == 0:
        return MainComponent(np.zeros_like(binary), 0, 0, 0, False)
    order = np.argsort(areas)[::-1]
    largest = labels == order[0] + 1
    filled = fill_holes(largest)
    second = int(areas[order[1]]) if len(areas) > 1 else 0
    return MainComponent(filled, int(filled.sum()), int(len(areas)), second, touches_border(filled))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The region with every enclosed background hole filled."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 2)
    return (flood != 2)[1:-1, 1:-1]


def touches_border(mask: np.ndarray) -> bool:
    """True when the region reaches the outermost row or column: its outline is cut off."""
    return bool(mask[0, :].any() or mask[-1, :].any() or mask[:, 0].any() or mask[:, -1].any())


def boundary_points(mask: np.ndarray) -> np.ndarray:
    """Sub-pixel boundary: midpoints between 4-neighbouring pixel centres on opposite sides.

    Returns float32 `[K, 2]` (x, y). For a mask rasterised with the pixel-centre convention
    these points scatter symmetrically about the true outline.
    """
    binary = mask.astype(bool)
    rows_h, cols_h = np.nonzero(binary[:, :-1] != binary[:, 1:])
    rows_v, cols_v = np.nonzero(binary[:-1, :] != binary[1:, :])
    horizontal = np.stack([cols_h + 0.5, rows_h.astype(np.float64)], axis=1)
    vertical = np.stack([cols_v.astype(np.float64), rows_v + 0.5], axis=1)
    return np.concatenate([horizontal, vertical]).astype(np.float32)
