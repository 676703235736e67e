"""Tests for pixel spacing sources and the model <-> source pixel mapping."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from edge_fetal.calibration import (
    Letterbox,
    PixelSpacing,
    box_shrink,
    fitted_box,
    letterbox,
    spacing_from_dicom,
    spacing_from_value,
    spacing_table_from_csv,
)
from edge_fetal.errors import CalibrationError


# --- PixelSpacing -------------------------------------------------------------------------

def test_value_accepts_numbers_and_numeric_strings() -> None:
    assert spacing_from_value(0.15).mm_per_px == 0.15
    s = spacing_from_value(" 0.2 ")
    assert s.mm_per_px == 0.2 and s.source == "command line --pixel-spacing"
    assert spacing_from_value(np.float32(0.5), source="test").mm_per_px == 0.5


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, float("nan"), float("inf"), -float("inf"),
                                 "abc", "", "nan", "0", True, None, [0.1]])
def test_value_refuses_unusable_spacing(bad) -> None:
    with pytest.raises(CalibrationError, match="pixel spacing"):
        spacing_from_value(bad)


def test_spacing_is_frozen_and_needs_a_source() -> None:
    s = PixelSpacing(0.1, "test")
    with pytest.raises(AttributeError):
        s.mm_per_px = 0.2  # type: ignore[misc]
    with pytest.raises(CalibrationError, match="source"):
        PixelSpacing(0.1, " ")


# --- DICOM --------------------------------------------------------------------------------

def _region(fmt=1, dtype=1, box=(0, 0, 799, 599), units=(3, 3), delta_cm=(0.015, 0.015)) -> Dataset:
    r = Dataset()
    r.RegionSpatialFormat, r.RegionDataType, r.RegionFlags = fmt, dtype, 0
    r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1 = box
    r.PhysicalUnitsXDirection, r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX, r.PhysicalDeltaY = delta_cm
    return r


def _dataset(*regions: Dataset, rows: int = 600, cols: int = 800) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = rows, cols
    ds.SequenceOfUltrasoundRegions = Sequence(list(regions))
    return ds


def test_dicom_single_region_cm_to_mm() -> None:
    s = spacing_from_dicom(_dataset(_region()))
    assert s.mm_per_px == pytest.approx(0.15)
    assert s.source == "DICOM SequenceOfUltrasoundRegions region 0"
    assert (s.region.x0, s.region.y0, s.region.x1, s.region.y1) == (0, 0, 799, 599)


def test_dicom_picks_2d_tissue_region_over_doppler_and_thumbnail() -> None:
    doppler = _region(fmt=3, dtype=3, box=(0, 400, 799, 599), units=(4, 7), delta_cm=(0.01, 0.5))
    thumbnail = _region(box=(700, 0, 799, 80), delta_cm=(0.05, 0.05))
    colour = _region(dtype=2, box=(300, 100, 500, 300), delta_cm=(0.02, 0.02))
    bmode = _region(box=(100, 20, 699, 399), delta_cm=(0.015, 0.015))
    s = spacing_from_dicom(_dataset(doppler, thumbnail, colour, bmode))
    assert s.mm_per_px == pytest.approx(0.15)
    assert s.region.index == 3 and s.source.endswith("region 3")


def test_dicom_explicit_image_shape_overrides_rows_columns() -> None:
    left = _region(box=(0, 0, 99, 99), delta_cm=(0.02, 0.02))
    right = _region(box=(100, 0, 399, 299), delta_cm=(0.01, 0.01))
    s = spacing_from_dicom(_dataset(left, right), image_shape_hw=(100, 100))
    assert s.region.index == 0 and s.mm_per_px == pytest.approx(0.2)


@pytest.mark.parametrize("regions, message", [
    ([], "no regions"),
    ([_region(fmt=3, dtype=3)], "no 2-D"),
    ([_region(units=(0, 0))], "unit-less"),
    ([_region(units=(3, 4))], "seconds"),
    ([_region(delta_cm=(0.015, 0.02))], "non-square"),
    ([_region(delta_cm=(0.0, 0.0))], "non-positive"),
    ([_region(delta_cm=(-0.015, -0.015))], "non-positive"),
    ([_region(box=(0, 0, 399, 599)), _region(box=(400, 0, 799, 599), delta_cm=(0.03, 0.03))],
     "ambiguous"),
    ([_region(box=(900, 700, 999, 799))], "outside"),
])
def test_dicom_refusals_name_the_problem(regions, message) -> None:
    with pytest.raises(CalibrationError, match=message):
        spacing_from_dicom(_dataset(*regions))


def test_dicom_region_missing_attribute() -> None:
    r = _region()
    del r.PhysicalDeltaY
    with pytest.raises(CalibrationError, match="PhysicalDeltaY"):
        spacing_from_dicom(_dataset(r))


def test_dicom_pixel_spacing_fallback() -> None:
    ds = Dataset()
    ds.PixelSpacing = [0.2, 0.2]
    s = spacing_from_dicom(ds)
    assert s.mm_per_px == pytest.approx(0.2) and "PixelSpacing" in s.source and s.region is None
    ds.PixelSpacing = [0.2, 0.3]
    with pytest.raises(CalibrationError, match="non-square"):
        spacing_from_dicom(ds)
    with pytest.raises(CalibrationError, match="unknown"):
        spacing_from_dicom(Dataset())


# --- CSV ----------------------------------------------------------------------------------

def test_csv_hc18_and_multiplane(tmp_path) -> None:
    hc18 = tmp_path / "training_set_pixel_size_and_HC.csv"
    hc18.write_text("filename,pixel size(mm),head circumference (mm)\n"
                    "000_HC.png,0.0691358041432124,44.3\n001_HC.png,0.0897,56.81\n")
    table = spacing_table_from_csv(hc18)
    assert table["001_HC.png"].mm_per_px == pytest.approx(0.0897)
    assert table["000_HC.png"].source == "CSV training_set_pixel_size_and_HC.csv line 2"
    multi = tmp_path / "biometry.csv"
    multi.write_text("filename,plane,pixel_size_mm,hc_mm,bpd_mm,ofd_mm,ac_mm,fl_mm\n"
                     "a.png,head,0.12,170,,,,\n\nb.png,femur,0.10,,,,,40\n")
    assert {k: v.mm_per_px for k, v in spacing_table_from_csv(multi).items()} == \
        {"a.png": 0.12, "b.png": 0.10}


@pytest.mark.parametrize("text, message", [
    ("filename,pixel size(mm)\na.png,0.1\nb.png,abc\n", r"line 3.*'abc'"),
    ("filename,pixel size(mm)\na.png,-0.1\n", r"line 2.*-0.1"),
    ("filename,pixel_size_mm\na.png,\n", r"line 2.*''"),
    ("filename,hc_mm\na.png,170\n", "no spacing column"),
    ("filename,pixel size(mm)\na.png,0.1\na.png,0.2\n", "already has"),
    ("", "empty"),
])
def test_csv_refusals_name_file_line_and_value(tmp_path, text, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message) as info:
        spacing_table_from_csv(path)
    assert "bad.csv" in str(info.value)


def test_csv_missing_file(tmp_path) -> None:
    with pytest.raises(CalibrationError, match="nope.csv"):
        spacing_table_from_csv(tmp_path / "nope.csv")


# --- Letterbox ----------------------------------------------------------------------------

@pytest.mark.parametrize("src_hw", [(540, 800), (800, 540), (300, 300), (100, 60), (257, 1)])
def test_letterbox_geometry(src_hw) -> None:
    lb = letterbox(src_hw, 256)
    ch, cw = lb.content_hw
    assert max(ch, cw) == 256
    assert lb.pad_x * 2 <= 256 - cw <= lb.pad_x * 2 + 1
    assert lb.pad_y * 2 <= 256 - ch <= lb.pad_y * 2 + 1
    out = lb.to_model(np.full(src_hw, 200, np.uint8))
    assert out.shape == (256, 256) and out.dtype == np.uint8
    assert out[lb.pad_y:lb.pad_y + ch, lb.pad_x:lb.pad_x + cw].min() == 200
    assert out.sum() == 200 * ch * cw  # padding is 0


def test_points_model_source_model_identity() -> None:
    lb = letterbox((540, 800), 256)
    pts = np.random.default_rng(0).uniform(-10, 300, size=(100, 2))
    np.testing.assert_allclose(lb.points_to_model(lb.points_to_source(pts)), pts, atol=1e-9)
    # The source image's outer edges land on the content's outer edges.
    corners = lb.points_to_model(np.array([[-0.5, -0.5], [799.5, 539.5]]))
    np.testing.assert_allclose(corners, [[lb.pad_x - 0.5, lb.pad_y - 0.5],
                                         [lb.pad_x + 255.5, lb.pad_y + lb.content_hw[0] - 0.5]])


@pytest.mark.parametrize("src_hw", [(540, 800), (800, 540), (300, 300), (120, 90)])
def test_point_mapping_matches_cv2_resize(src_hw) -> None:
    """A bright dot drawn at a source position appears where points_to_model says."""
    lb = letterbox(src_hw, 256)
    src = np.zeros(src_hw, np.uint8)
    y, x = src_hw[0] // 3, src_hw[1] // 2 + 1
    src[y - 4:y + 5, x - 4:x + 5] = 255  # centroid exactly (x, y)
    m = cv2.moments(lb.to_model(src).astype(np.float64))
    centroid = np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])
    np.testing.assert_allclose(centroid, lb.points_to_model(np.array([x, y])), atol=0.05)


@pytest.mark.parametrize("src_hw, atol_px", [((120, 90), 1e-3), ((97, 61), 1e-3),
                                              ((540, 800), 0.1), ((300, 300), 0.1)])
def test_resized_ramp_reads_back_source_coordinates(src_hw, atol_px) -> None:
    """Resize images whose value is the source x (or y): at every model pixel centre the value
    must equal points_to_source of that centre (exact when upscaling, INTER_AREA's piecewise
    constant averaging leaves a few hundredths of a pixel when shrinking)."""
    lb = letterbox(src_hw, 256)
    (h, w), (ch, cw) = src_hw, lb.content_hw
    ys, xs = np.mgrid[lb.pad_y + 2:lb.pad_y + ch - 2, lb.pad_x + 2:lb.pad_x + cw - 2]
    expected = lb.points_to_source(np.stack([xs, ys], axis=-1))
    for axis, ramp in ((0, np.tile(np.arange(w, dtype=np.float32), (h, 1))),
                       (1, np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w)))):
        got = lb.to_model(ramp)[ys, xs]
        np.testing.assert_allclose(got, expected[..., axis], atol=atol_px)


@pytest.mark.parametrize("src_hw", [(540, 800), (800, 540), (256, 256), (100, 140)])
def test_circle_centroid_round_trip(src_hw) -> None:
    lb = letterbox(src_hw, 256)
    src = np.zeros(src_hw, np.uint8)
    centre = (src_hw[1] * 0.43, src_hw[0] * 0.57)
    radius = min(src_hw) * 0.2
    cv2.circle(src, (round(centre[0] * 16), round(centre[1] * 16)), round(radius * 16), 255,
               thickness=-1, lineType=cv2.LINE_AA, shift=4)
    ms = cv2.moments(src.astype(np.float64))
    truth = np.array([ms["m10"] / ms["m00"], ms["m01"] / ms["m00"]])
    assert np.linalg.norm(truth - centre) < 0.5
    mm = cv2.moments(lb.to_model(src).astype(np.float64))
    back = lb.points_to_source(np.array([mm["m10"] / mm["m00"], mm["m01"] / mm["m00"]]))
    assert np.linalg.norm(back - truth) < 0.5


def test_mask_to_source_keeps_labels_and_shape() -> None:
    lb = letterbox((540, 800), 256)
    src = np.zeros((540, 800), np.uint8)
    cv2.ellipse(src, (400, 270), (200, 120), 20, 0, 360, 1, thickness=-1)
    model = (lb.to_model(src * 255) > 127).astype(np.uint8) * 2
    back = lb.mask_to_source(model)
    assert back.shape == (540, 800) and back.dtype == np.uint8
    assert set(np.unique(back)) == {0, 2}
    iou = np.logical_and(back > 0, src > 0).sum() / np.logical_or(back > 0, src > 0).sum()
    assert iou > 0.98


def test_mm_per_model_px() -> None:
    expected_mm = 0.1 * 800 / 256
    assert letterbox((540, 800), 256).mm_per_model_px(0.1) == pytest.approx(expected_mm, rel=1e-3)
    assert letterbox((100, 100), 400).mm_per_model_px(0.2) == pytest.approx(0.05)
    with pytest.raises(CalibrationError, match="not square"):
        letterbox((3, 1000), 256).mm_per_model_px(0.1)


def test_bad_sizes() -> None:
    with pytest.raises(ValueError):
        letterbox((0, 10), 256)
    with pytest.raises(ValueError):
        letterbox((10, 10), 256).to_model(np.zeros((11, 10), np.uint8))
    with pytest.raises(ValueError):
        letterbox((10, 10), 256).mask_to_source(np.zeros((128, 128), np.uint8))


@pytest.mark.parametrize("src_hw, box", [((540, 800), (176, 256)), ((541, 738), (192, 256)),
                                          ((1080, 1920), (144, 256)), ((480, 640), (192, 256)),
                                          ((800, 540), (256, 176)), ((300, 300), (256, 256))])
def test_fitted_box_pads_the_short_side_to_the_stride_only(src_hw, box) -> None:
    assert fitted_box(src_hw, 256, 16) == box
    lb = letterbox(src_hw, box)
    assert max(lb.content_hw) == 256 and lb.model_hw == box
    assert 0 <= box[0] - lb.content_hw[0] < 16 and 0 <= box[1] - lb.content_hw[1] < 16
    out = lb.to_model(np.full(src_hw, 7, np.uint8))
    assert out.shape == box and out.sum() == 7 * lb.content_hw[0] * lb.content_hw[1]
    # the content is scaled exactly as in the square letterbox: same model pixels, less padding
    square = letterbox(src_hw, 256)
    assert lb.content_hw == square.content_hw
    np.testing.assert_array_equal(out[lb.pad_y:lb.pad_y + lb.content_hw[0], lb.pad_x:lb.pad_x + lb.content_hw[1]],
                                  square.to_model(np.full(src_hw, 7, np.uint8))[square.pad_y:square.pad_y + square.content_hw[0],
                                                                                 square.pad_x:square.pad_x + square.content_hw[1]])


def test_letterbox_into_a_smaller_box_fits_the_limiting_side() -> None:
    lb = letterbox((541, 738), (176, 256))  # a taller frame in the 800x540 training box
    assert lb.model_hw == (176, 256) and lb.content_hw[0] == 176 and lb.content_hw[1] < 256
    assert lb.mask_to_source(np.ones((176, 256), np.uint8)).shape == (541, 738)


def test_fitted_box_refuses_a_size_off_the_stride() -> None:
    with pytest.raises(ValueError, match="multiple of the stride"):
        fitted_box((540, 800), 250, 16)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 1500), w=st.integers(1, 1500), model_size=st.integers(16, 512))
def test_letterbox_properties(h: int, w: int, model_size: int) -> None:
    lb = letterbox((h, w), model_size)
    assert isinstance(lb, Letterbox)
    ch, cw = lb.content_hw
    assert 1 <= ch <= model_size and 1 <= cw <= model_size and max(ch, cw) == model_size
    assert 0 <= lb.pad_x and lb.pad_x + cw <= model_size
    assert 0 <= lb.pad_y and lb.pad_y + ch <= model_size
    # Uniform scale up to rounding the short side to whole pixels.
    assert abs(lb.scale_x * w - cw) < 1e-9 and abs(lb.scale_y * h - ch) < 1e-9
    assert abs(ch - max(1.0, h * model_size / max(h, w))) <= 0.5 + 1e-9
    # Source pixel centres -> model -> source is the identity.
    ys, xs = np.meshgrid(np.linspace(0, h - 1, 5), np.linspace(0, w - 1, 5), indexing="ij")
    pts = np.stack([xs.ravel(), ys.ravel()], axis=-1)
    model_pts = lb.points_to_model(pts)
    np.testing.assert_allclose(lb.points_to_source(model_pts), pts, atol=1e-6 * max(h, w))
    assert model_pts.min() >= -0.5 and model_pts.max() <= model_size - 0.5
    # A mask covering the content maps back to a full source mask; padding never leaks in.
    mask = np.zeros((model_size, model_size), np.uint8)
    mask[lb.pad_y:lb.pad_y + ch, lb.pad_x:lb.pad_x + cw] = 1
    assert lb.mask_to_source(mask).min() == 1
    if h * w <= 250_000:
        assert lb.to_model(np.full((h, w), 9, np.uint8)).sum() == 9 * ch * cw
    assert math.isfinite(lb.points_to_source(np.array([0.0, 0.0])).sum())


# --- the live engine's fast shrink -------------------------------------------------------------

def _bundled_frame() -> np.ndarray:
    from pathlib import Path

    import edge_fetal

    return cv2.imread(str(Path(edge_fetal.__file__).parent / "assets" / "hc18" / "263_HC.png"), cv2.IMREAD_GRAYSCALE)


def test_box_shrink_reads_like_area_averaging_for_the_typical_frame() -> None:
    """800x540 -> 256x173 (factor 3.125): the model sees what it was trained on, within a grey level."""
    frame = _bundled_frame()
    assert frame.shape == (540, 800)
    fast = box_shrink(frame, (173, 256))
    area = cv2.resize(frame, (256, 173), interpolation=cv2.INTER_AREA)
    difference = np.abs(fast.astype(np.int16) - area)
    assert fast.dtype == np.uint8 and difference.mean() < 0.5 and difference.max() <= 8


@pytest.mark.parametrize("shape, out_hw, dtype", [
    ((540, 800), (200, 296), np.uint8),  # factor 2.7: no whole box width matches
    ((704, 1024), (176, 256), np.uint8),  # factor 4: an even box is not centred on the sample
    ((540, 800), (173, 256), np.float32),  # label coverage in training: exact area only
    ((120, 160), (60, 80), np.uint8),  # factor 2: too small a box to gain anything
])
def test_box_shrink_declines_where_it_would_not_match(shape, out_hw, dtype) -> None:
    assert box_shrink(np.zeros(shape, dtype), out_hw) is None


def test_fast_shrink_falls_back_to_area_averaging_exactly() -> None:
    frame = np.random.default_rng(3).integers(0, 256, (500, 700), dtype=np.uint8)
    box = letterbox(frame.shape, 256)  # factor 2.73
    np.testing.assert_array_equal(box.to_model(frame, fast_shrink=True), box.to_model(frame))
