"""The measured region of a frame: a `--roi x,y,w,h` box, or the image fan found automatically.

When a scanner's whole screen comes over HDMI, the B-mode image (the fan) is a part of it, next to
menus, text and a grey-scale bar. Cropping to a fixed box keeps the model on the image and keeps
the pixel spacing valid: the box never moves during a run, because a crop that followed the image
would change the frame size under the fusion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_fetal.errors import EdgeFetalError


class RoiError(EdgeFetalError):
    """A `--roi` value that is not a box, or a box that does not fit the frame."""


@dataclass(frozen=True)
class Roi:
    """A crop box in source pixels: columns x..x+w-1, rows y..y+h-1."""

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        if self.x < 0 or self.y < 0 or self.w < 1 or self.h < 1:
            raise RoiError(f"ROI needs x, y >= 0 and width, height >= 1, got {self}")

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The box of `image` (a view); raises `RoiError` when the box does not fit inside it."""
        height, width = image.shape[:2]
        if self.x + self.w > width or self.y + self.h > height:
            raise RoiError(f"ROI {self} (x,y,w,h) reaches past the {width}x{height} frame")
        return image[self.y : self.y + self.h, self.x : self.x + self.w]


def parse_roi(text: str) -> Roi | str:
    """`"x,y,w,h"` (integers, pixels) → `Roi`; `"auto"` → "auto". Anything else raises `RoiError`."""
    cleaned = text.strip().lower()
    if cleaned == "auto":
        return "auto"
    parts = [p.strip() for p in cleaned.split(",")]
    if len(parts) != 4:
        raise RoiError(f"--roi must be x,y,w,h (four integers, pixels) or 'auto', got {text!r}")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise RoiError(f"--roi must be x,y,w,h with whole numbers of pixels, got {text!r}") from None
    return Roi(x, y, w, h)


def detect_fan(image: np.ndarray, min_area_fraction: float = 0.05, threshold: int = 10) -> Roi | None:
    """Bounding box of the ultrasound image in a screen grab, or None when nothing plausible is found.

    Grey uint8 in. The image is the largest "bright-ish" connected region: pixels above
    `threshold` after a median blur (speckle), an opening that removes thin text, lines and the
    grey-scale bar, and a closing that joins the speckle and dark fluid inside the fan. Regions of
    at least a quarter of its area that share most of its columns are joined to it (a dark band of
    fluid can cut a fan in two). Regions under `min_area_fraction` of the frame are not a fan.
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"detect_fan needs a grey uint8 image, got {image.dtype} {image.shape}")
    height, width = image.shape
    size = max(3, round(min(height, width) / 60)) | 1
    bright = (cv2.medianBlur(image, 5) > threshold).astype(np.uint8)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    closing = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3 * size, 3 * size))
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, closing)
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if count < 2:
        return None
    regions = stats[1:]
    main = regions[int(np.argmax(regions[:, cv2.CC_STAT_AREA]))]
    if main[cv2.CC_STAT_AREA] < min_area_fraction * height * width:
        return None
    x0, y0 = main[cv2.CC_STAT_LEFT], main[cv2.CC_STAT_TOP]
    x1, y1 = x0 + main[cv2.CC_STAT_WIDTH], y0 + main[cv2.CC_STAT_HEIGHT]
    for region in regions:
        left, top, w, h, area = (int(v) for v in region)
        shared = min(x1, left + w) - max(x0, left)
        if area >= 0.25 * main[cv2.CC_STAT_AREA] and shared > 0.5 * min(w, x1 - x0):
            x0, y0, x1, y1 = min(x0, left), min(y0, top), max(x1, left + w), max(y1, top + h)
    return Roi(int(x0), int(y0), int(x1 - x0), int(y1 - y0))
