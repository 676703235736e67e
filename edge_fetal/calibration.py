"""Pixel spacing and the mapping between model pixels and source pixels.

Lengths in mm are only as good as the spacing behind them, so every way of getting one
(DICOM ultrasound regions, a command-line value, a dataset CSV) ends in one validated
`PixelSpacing` that also says where it came from; anything doubtful raises `CalibrationError`
instead of guessing. `Letterbox` maps model-input pixels back to source pixels so that shapes
are measured in source pixels at a uniform scale (DESIGN: never fit an ellipse on a
non-uniformly resized mask).

Coordinate convention everywhere: integer coordinates are pixel centres; pixel (0, 0) covers
[-0.5, 0.5) x [-0.5, 0.5). Points are (x, y) = (column, row).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import cv2
import numpy as np

from edge_fetal.errors import CalibrationError

SQUARE_TOLERANCE = 0.01  # |dx - dy| / dx above this: pixels are not square, refuse.
_SPATIAL_FORMAT_2D = 1  # (0018,6012) 0001H: 2D (tissue or flow), DICOM PS3.3 C.8.5.5.1.1
_DATA_TYPE_TISSUE = 1  # (0018,6014) 0001H: tissue, C.8.5.5.1.2
_UNITS_CM = 3  # (0018,6024/6026) 0003H: cm, C.8.5.5.1.15
_UNIT_NAMES = {0: "unit-less (none)", 1: "percent", 2: "dB", 3: "cm", 4: "seconds", 5: "hertz",
               6: "dB/seconds", 7: "cm/sec", 8: "cm²", 9: "cm²/sec", 0xC: "degrees"}
_CSV_SPACING_COLUMNS = ("pixel size(mm)", "pixel_size_mm")


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the DICOM Sequence of Ultrasound Regions, in image pixels.

    The box is inclusive: (x1, y1) is the lower-right pixel of the region (C.8.5.5), so the
    region as a numpy slice is `image[y0:y1 + 1, x0:x1 + 1]`; the stream may use it as ROI.
    """

    index: int
    spatial_format: int
    data_type: int
    x0: int
    y0: int
    x1: int
    y1: int
    units_x: int
    units_y: int
    delta_x: float  # physical units per pixel (cm when units_x == 3)
    delta_y: float

    @property
    def area_px(self) -> int:
        return max(0, self.x1 - self.x0 + 1) * max(0, self.y1 - self.y0 + 1)

    def contains(self, x: float, y: float) -> bool:
        """Whether the point (x, y) in image pixels lies inside the region's box."""
        return self.x0 - 0.5 <= x <= self.x1 + 0.5 and self.y0 - 0.5 <= y <= self.y1 + 0.5


@dataclass(frozen=True)
class PixelSpacing:
    """A validated, square pixel spacing in mm per source pixel and where it came from.

    `source` is shown in reports so a reader can check the calibration; `region` is the DICOM
    ultrasound region it was read from, if any. Construction raises `CalibrationError` for
    anything that is not a finite positive number, so a `PixelSpacing` is always usable.
    """

    mm_per_px: float
    source: str
    region: UltrasoundRegion | None = None

    def __post_init__(self) -> None:
        value = self.mm_per_px
        if isinstance(value, bool) or not isinstance(value, Real):
            raise CalibrationError(
                f"pixel spacing from {self.source} is not a number: {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise CalibrationError(
                f"pixel spacing from {self.source} must be a finite number > 0 mm/px, "
                f"got {value!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise CalibrationError("pixel spacing needs a non-empty description of its source")
        object.__setattr__(self, "mm_per_px", float(value))


def spacing_from_value(mm_per_px: float | str,
                       source: str = "command line --pixel-spacing") -> PixelSpacing:
    """A spacing typed by a user or read from text; strings are parsed, junk raises."""
    if isinstance(mm_per_px, str):
        try:
            mm_per_px = float(mm_per_px.strip())
        except ValueError:
            raise CalibrationError(
                f"pixel spacing from {source} is not a number: {mm_per_px!r}") from None
    return PixelSpacing(mm_per_px, source)


def _region_from_item(index: int, item) -> UltrasoundRegion:
    names = ("RegionSpatialFormat", "RegionDataType", "RegionLocationMinX0", "RegionLocationMinY0",
             "RegionLocationMaxX1", "RegionLocationMaxY1", "PhysicalUnitsXDirection",
             "PhysicalUnitsYDirection", "PhysicalDeltaX", "PhysicalDeltaY")
    missing = [n for n in names if item.get(n) is None]
    if missing:
        raise CalibrationError(f"DICOM ultrasound region {index} lacks {', '.join(missing)}")
    v = [item.get(n) for n in names]
    return UltrasoundRegion(index, *(int(x) for x in v[:8]), float(v[8]), float(v[9]))


def _region_spacing_mm(region: UltrasoundRegion) -> float:
    """mm per pixel of one region; raises naming the problem if it has no square cm scale."""
    where = f"DICOM ultrasound region {region.index}"
    for axis, unit in (("X", region.units_x), ("Y", region.units_y)):
        if unit != _UNITS_CM:
            raise CalibrationError(f"{where} has physical units {axis} = "
                                   f"{_UNIT_NAMES.get(unit, f'code {unit}')}, not cm")
    dx, dy = region.delta_x, region.delta_y
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx <= 0 or dy <= 0:
        raise CalibrationError(f"{where} has a non-positive or non-finite physical delta "
                               f"(X {dx!r} cm, Y {dy!r} cm)")
    if abs(dx - dy) / dx > SQUARE_TOLERANCE:
        raise CalibrationError(f"{where} has non-square pixels (X {dx} cm, Y {dy} cm per pixel); "
                               "lengths in mm would depend on direction")
    return dx * 10.0


def spacing_from_dicom(ds, image_shape_hw: tuple[int, int] | None = None) -> PixelSpacing:
    """Pixel spacing of an ultrasound DICOM dataset, with the region it came from.

    Reads the Sequence of Ultrasound Regions (0018,6011), keeps the 2-D regions (tissue ones
    first), prefers those containing the image centre and takes the largest; if those candidates
    disagree on spacing the calibration is ambiguous and refused. Without the sequence, Pixel
    Spacing (0028,0030) is used if square, and `source` says so. `image_shape_hw` defaults to
    the dataset's Rows/Columns.
    """
    if image_shape_hw is None and "Rows" in ds and "Columns" in ds:
        image_shape_hw = (int(ds.Rows), int(ds.Columns))
    items = ds.get("SequenceOfUltrasoundRegions")
    if items is None:
        return _spacing_from_pixel_spacing(ds)
    if len(items) == 0:
        raise CalibrationError("DICOM Sequence of Ultrasound Regions is empty: no regions")
    regions = [_region_from_item(i, item) for i, item in enumerate(items)]
    two_d = [r for r in regions if r.spatial_format == _SPATIAL_FORMAT_2D]
    if not two_d:
        found = sorted({r.spatial_format for r in regions})
        raise CalibrationError(
            f"DICOM has no 2-D ultrasound region (region spatial formats {found})")
    candidates = [r for r in two_d if r.data_type == _DATA_TYPE_TISSUE] or two_d
    if image_shape_hw is not None:
        h, w = image_shape_hw
        inside = [r for r in candidates if r.x0 < w and r.y0 < h]
        if not inside:
            raise CalibrationError(
                f"every 2-D DICOM ultrasound region lies outside the {w}x{h} image")
        centred = [r for r in inside if r.contains((w - 1) / 2, (h - 1) / 2)]
        candidates = centred or inside
    chosen = max(candidates, key=lambda r: r.area_px)
    mm_per_px = _region_spacing_mm(chosen)
    for other in candidates:
        if other is not chosen and other.units_x == other.units_y == _UNITS_CM and \
                abs(other.delta_x * 10.0 - mm_per_px) / mm_per_px > SQUARE_TOLERANCE:
            raise CalibrationError(
                f"DICOM ultrasound regions {chosen.index} and {other.index} are both candidates "
                f"but disagree on spacing ({mm_per_px:g} vs {other.delta_x * 10.0:g} mm/px): "
                "ambiguous")
    source = f"DICOM SequenceOfUltrasoundRegions region {chosen.index}"
    return PixelSpacing(mm_per_px, source, chosen)


def _spacing_from_pixel_spacing(ds) -> PixelSpacing:
    value = ds.get("PixelSpacing")
    if value is None:
        raise CalibrationError("DICOM has neither a Sequence of Ultrasound Regions nor Pixel "
                               "Spacing (0028,0030): pixel spacing unknown")
    try:
        row_mm, col_mm = (float(v) for v in value)
    except (TypeError, ValueError):
        raise CalibrationError(
            f"DICOM Pixel Spacing (0028,0030) is not two numbers: {value!r}") from None
    if not (math.isfinite(row_mm) and math.isfinite(col_mm)) or row_mm <= 0 or col_mm <= 0:
        raise CalibrationError(
            f"DICOM Pixel Spacing (0028,0030) is non-positive: {row_mm}\\{col_mm} mm")
    if abs(row_mm - col_mm) / col_mm > SQUARE_TOLERANCE:
        raise CalibrationError(f"DICOM Pixel Spacing (0028,0030) has non-square pixels: "
                               f"{row_mm}\\{col_mm} mm")
    return PixelSpacing(col_mm, "DICOM PixelSpacing (0028,0030); no SequenceOfUltrasoundRegions")


def spacing_table_from_csv(path: str | Path) -> dict[str, PixelSpacing]:
    """filename -> spacing from an HC18 CSV (`pixel size(mm)`) or the multi-plane CSV
    (`pixel_size_mm`); the spacing column is found by name. Any bad cell raises, naming
    the file, the line and the value, because one silently wrong row skews every metric."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise CalibrationError(f"cannot read spacing CSV {path}: {e.strerror or e}") from None
    if not rows:
        raise CalibrationError(f"spacing CSV {path} is empty")
    header = [c.strip().lower() for c in rows[0]]
    if "filename" not in header:
        raise CalibrationError(f"spacing CSV {path} line 1 has no 'filename' column: {rows[0]}")
    spacing_cols = [c for c in _CSV_SPACING_COLUMNS if c in header]
    if not spacing_cols:
        raise CalibrationError(f"spacing CSV {path} line 1 has no spacing column "
                               f"({' or '.join(_CSV_SPACING_COLUMNS)}): {rows[0]}")
    i_name, i_px = header.index("filename"), header.index(spacing_cols[0])
    table: dict[str, PixelSpacing] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        where = f"spacing CSV {path} line {line}"
        if len(row) <= max(i_name, i_px) or not row[i_name].strip():
            raise CalibrationError(f"{where} is short or has no filename: {row}")
        name, text = row[i_name].strip(), row[i_px]
        spacing = spacing_from_value(text, f"CSV {path.name} line {line}")
        previous = table.get(name)
        if previous is not None and not math.isclose(previous.mm_per_px, spacing.mm_per_px):
            raise CalibrationError(f"{where}: {name} already has spacing {previous.mm_per_px} "
                                   f"({previous.source}), now {text!r}")
        table.setdefault(name, spacing)
    return table


@dataclass(frozen=True)
class Letterbox:
    """Source image placed, aspect kept, in a model input of `model_hw` pixels.

    The input is square (S²) for a fixed-shape model, or, for a model that takes any multiple of
    its stride, only as tall or wide as the content needs (`fitted_box`): the padding rows of a
    square letterbox cost as much compute as the image and carry nothing.
    The content is `content_hw` pixels at offset (`pad_x`, `pad_y`); the rest is 0. Scales are
    per axis and exactly those `cv2.resize` applies (content / source size): rounding the short
    side to whole pixels makes them differ by under half a model pixel over the content, so
    measure after mapping back to source pixels, where the scale is exactly uniform.
    """

    src_hw: tuple[int, int]
    model_hw: tuple[int, int]
    content_hw: tuple[int, int]
    pad_x: int
    pad_y: int

    @property
    def scale_x(self) -> float:
        return self.content_hw[1] / self.src_hw[1]

    @property
    def scale_y(self) -> float:
        return self.content_hw[0] / self.src_hw[0]

    def to_model(self, image: np.ndarray, fast_shrink: bool = False) -> np.ndarray:
        """Grey HxW frame (uint8, or float32) -> model_hw, same dtype, 0-padded.

        A frame is shrunk by area averaging (INTER_AREA), as in training. `fast_shrink` (the live
        engine) takes `box_shrink` instead where it applies.
        """
        if image.shape != self.src_hw:
            raise ValueError(f"expected a grey image of shape {self.src_hw}, got {image.shape}")
        ch, cw = self.content_hw
        shrinking = ch * cw < image.shape[0] * image.shape[1]
        resized = box_shrink(image, (ch, cw)) if fast_shrink and shrinking else None
        if resized is None:
            resized = cv2.resize(image, (cw, ch), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        out = np.zeros(self.model_hw, dtype=image.dtype)
        out[self.pad_y:self.pad_y + ch, self.pad_x:self.pad_x + cw] = resized
        return out

    def points_to_source(self, points_xy: np.ndarray) -> np.ndarray:
        """(..., 2) model (x, y) -> source (x, y); the exact inverse of `points_to_model`."""
        p = np.asarray(points_xy, dtype=np.float64)
        x = (p[..., 0] - self.pad_x + 0.5) / self.scale_x - 0.5
        y = (p[..., 1] - self.pad_y + 0.5) / self.scale_y - 0.5
        return np.stack([x, y], axis=-1)

    def points_to_model(self, points_xy: np.ndarray) -> np.ndarray:
        """(..., 2) source (x, y) -> model (x, y), matching where cv2.resize puts a pixel centre."""
        p = np.asarray(points_xy, dtype=np.float64)
        x = (p[..., 0] + 0.5) * self.scale_x - 0.5 + self.pad_x
        y = (p[..., 1] + 0.5) * self.scale_y - 0.5 + self.pad_y
        return np.stack([x, y], axis=-1)

    def mask_to_source(self, mask_model: np.ndarray) -> np.ndarray:
        """Labels at model resolution -> source HxW, nearest neighbour, dtype kept; each source
        pixel takes the model pixel its centre falls in, clamped to the content (never padding)."""
        if mask_model.shape[:2] != self.model_hw:
            raise ValueError(f"expected a {self.model_hw[0]}x{self.model_hw[1]} mask, "
                             f"got {mask_model.shape}")
        (h, w), (ch, cw) = self.src_hw, self.content_hw
        cols = np.floor((np.arange(w) + 0.5) * self.scale_x).astype(np.intp)
        rows = np.floor((np.arange(h) + 0.5) * self.scale_y).astype(np.intp)
        cols = np.clip(cols, 0, cw - 1) + self.pad_x
        rows = np.clip(rows, 0, ch - 1) + self.pad_y
        return mask_model[rows[:, None], cols[None, :]]

    def mm_per_model_px(self, spacing_mm_per_px: float) -> float:
        """Spacing of one model pixel; refused if rounding made the two axes differ > 1 %."""
        sx, sy = self.scale_x, self.scale_y
        if abs(sx - sy) / max(sx, sy) > SQUARE_TOLERANCE:
            raise CalibrationError(f"model pixels are not square for a {self.src_hw[1]}x"
                                   f"{self.src_hw[0]} source (scales {sx:.4f}, {sy:.4f}); "
                                   "measure in source pixels instead")
        return float(spacing_mm_per_px) * 2.0 / (sx + sy)


# How far a shrink factor may be from a whole odd number for `box_shrink` to stand in for INTER_AREA.
BOX_SHRINK_TOLERANCE = 0.15


def box_shrink(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray | None:
    """An 8-bit frame shrunk to `out_hw` by a box blur of the whole shrink factor, then bilinear
    sampling; None where that would not match area averaging (then use INTER_AREA).

    OpenCV's INTER_AREA took ~1 ms for 800x540 -> 256x173 on the 2-core CI machine, a tenth of the
    live frame's model call; this takes 0.2 ms. At that factor (3.125) it is within 0.16 grey levels
    of INTER_AREA on average (max 5, 40 HC18 frames), and the shipped model's figures moved by
    noise only (README). Only whole odd factors (±BOX_SHRINK_TOLERANCE) qualify: an odd box is
    centred on the sample, and a whole factor is what the box width can match.
    """
    (h, w), (out_h, out_w) = image.shape[:2], out_hw
    factor_y, factor_x = h / out_h, w / out_w
    box_y, box_x = round(factor_y), round(factor_x)
    if image.dtype != np.uint8 or min(box_x, box_y) < 3 or not (box_x % 2 and box_y % 2):
        return None
    if abs(factor_x - box_x) > BOX_SHRINK_TOLERANCE or abs(factor_y - box_y) > BOX_SHRINK_TOLERANCE:
        return None
    return cv2.resize(cv2.blur(image, (box_x, box_y)), (out_w, out_h), interpolation=cv2.INTER_LINEAR)


def letterbox(src_hw: tuple[int, int], box: int | tuple[int, int]) -> Letterbox:
    """Fit a source frame, aspect kept, in a model input of `box` pixels (S for S², or (H, W)).

    Uniform scale min(H / h, W / w), content centred, zero padding; any source size (also upscaling).
    """
    h, w = (int(v) for v in src_hw)
    box_h, box_w = (int(box), int(box)) if np.ndim(box) == 0 else (int(box[0]), int(box[1]))
    if min(h, w, box_h, box_w) < 1:
        raise ValueError(f"need positive sizes, got source {src_hw} and model input {box}")
    scale = min(box_h / h, box_w / w)
    ch = min(box_h, max(1, round(h * scale)))
    cw = min(box_w, max(1, round(w * scale)))
    pad_x, pad_y = (box_w - cw) // 2, (box_h - ch) // 2
    return Letterbox((h, w), (box_h, box_w), (ch, cw), pad_x, pad_y)


# The frame the fitted-box models are trained, tuned and timed for: HC18's and the simulator's
# 800x540 (height, width).
TYPICAL_SOURCE_HW = (540, 800)


def fitted_box(src_hw: tuple[int, int], model_size: int, stride: int) -> tuple[int, int]:
    """The smallest model input (H, W) for a source: long side `model_size`, short side only
    rounded up to a multiple of `stride` (for a model that takes any multiple of its stride)."""
    h, w = (int(v) for v in src_hw)
    if min(h, w) < 1 or stride < 1 or model_size < 1 or model_size % stride:
        raise ValueError(f"need a positive source size and a model size that is a multiple of the stride, "
                         f"got source {src_hw}, model size {model_size}, stride {stride}")
    scale = model_size / max(h, w)
    return (-(-max(1, round(h * scale)) // stride) * stride, -(-max(1, round(w * scale)) // stride) * stride)
