"""The ultrasound simulator: determinism, masks and truth, fan geometry, sweeps, pasting, texture
statistics, and the multi-plane biometry CSV (reader, writer, simulated data sets)."""

from __future__ import annotations

import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge_fetal.biometry import measure_abdomen, measure_femur, measure_head, ramanujan_perimeter
from edge_fetal.data.biometry_csv import (
    COLUMNS,
    CSV_NAME,
    BiometryRow,
    mask_name,
    read_biometry_csv,
    write_biometry_csv,
    write_simulated_set,
)
from edge_fetal.data.sim_anatomy import FemurShape, ellipse_mask, mean_sizes_mm
from edge_fetal.data.sim_paste import _morph_disk, paste_on_background
from edge_fetal.data.sim_render import plan_frame, render_plan
from edge_fetal.data.sim_sweep import render_sweep
from edge_fetal.data.sim_texture import compare_texture, format_texture_table
from edge_fetal.data.simulator import MASK_LABELS, PLANES, render_frame
from edge_fetal.errors import DatasetError

MEASURE = {"head": (measure_head, "hc_mm"), "abdomen": (measure_abdomen, "ac_mm"), "femur": (measure_femur, "fl_mm")}
APPLIES = {"head": {"hc_mm", "bpd_mm", "ofd_mm"}, "abdomen": {"ac_mm"}, "femur": {"fl_mm"}, "other": set()}


@pytest.fixture(scope="module")
def frames():
    """Three frames of every plane (seeds 0-2), rendered once for the module."""
    return {plane: [render_frame(plane, seed) for seed in range(3)] for plane in PLANES}


def test_same_seed_gives_identical_frames(frames):
    again = render_frame("femur", 1)
    assert np.array_equal(again.image, frames["femur"][1].image)
    assert np.array_equal(again.mask, frames["femur"][1].mask)
    assert again.truth == frames["femur"][1].truth
    assert not np.array_equal(frames["femur"][0].image, frames["femur"][1].image)


@pytest.mark.parametrize("plane", PLANES)
def test_every_plane_renders_with_its_own_label(frames, plane):
    for frame in frames[plane]:
        assert frame.image.dtype == np.uint8 and frame.image.shape == (540, 800)
        assert frame.mask.dtype == np.uint8 and frame.mask.shape == (540, 800)
        t = frame.truth
        assert t.plane == plane and 14.0 <= t.ga_weeks <= 40.0 and 0.05 <= t.mm_per_px <= 0.30
        labels = set(np.unique(frame.mask).tolist())
        if plane == "other":
            assert labels == {0} and t.ellipse is None and t.femur is None
        else:
            assert labels == {0, MASK_LABELS[plane]}
        for name in ("hc_mm", "bpd_mm", "ofd_mm", "ac_mm", "fl_mm"):
            assert (getattr(t, name) is not None) == (name in APPLIES[plane]), name


@pytest.mark.parametrize("plane", PLANES)
def test_black_outside_the_fan_and_target_inside_it_off_the_border(frames, plane):
    for frame in frames[plane]:
        fan = frame.probe.fan_mask()
        assert not frame.image[~fan].any()
        assert frame.image[fan].mean() > 5  # something is imaged
        target = frame.mask > 0
        assert not (target & ~fan).any()
        assert not (target[0].any() or target[-1].any() or target[:, 0].any() or target[:, -1].any())


@pytest.mark.parametrize("plane", ["head", "abdomen"])
def test_ellipse_truth_is_consistent_with_its_mask(frames, plane):
    for frame in frames[plane]:
        t, e = frame.truth, frame.truth.ellipse
        a, b = e.semi_major_px, e.semi_minor_px
        assert frame.mask.sum() / MASK_LABELS[plane] == pytest.approx(math.pi * a * b, rel=0.01)
        perimeter_mm = ramanujan_perimeter(a, b) * t.mm_per_px
        if plane == "head":
            assert t.hc_mm == pytest.approx(perimeter_mm, rel=1e-9)
            assert (t.bpd_mm, t.ofd_mm) == pytest.approx((2 * b * t.mm_per_px, 2 * a * t.mm_per_px), rel=1e-9)
            assert 0.70 <= t.bpd_mm / t.ofd_mm <= 0.86
        else:
            assert t.ac_mm == pytest.approx(perimeter_mm, rel=1e-9)


def test_femur_truth_is_the_extent_along_the_chord(frames):
    for frame in frames["femur"]:
        f, k = frame.truth.femur, frame.truth.mm_per_px
        assert frame.truth.fl_mm == pytest.approx(f.length_px * k, rel=1e-9)
        ys, xs = np.nonzero(frame.mask)
        (x0, y0), (x1, y1) = f.end0_xy, f.end1_xy
        along = ((xs - x0) * (x1 - x0) + (ys - y0) * (y1 - y0)) / f.length_px
        assert along.max() - along.min() == pytest.approx(f.length_px, abs=1.5)  # pixel centres
        assert len(xs) == pytest.approx(f.length_px * f.width_px, rel=0.03)
        assert 2.0 <= f.width_px * k <= 5.5 and abs(f.sagitta_px) < 0.05 * f.length_px


def test_femur_shape_has_flat_ends_and_exact_length():
    bar = FemurShape((100.0, 200.0), (400.0, 150.0), 12.0, 9.0)
    mask = bar.mask((300, 500))
    ys, xs = np.nonzero(mask)
    u = np.array([300.0, -50.0]) / bar.length_px
    t = (xs - 250.0) * u[0] + (ys - 175.0) * u[1]
    assert t.min() >= -bar.length_px / 2 and t.max() <= bar.length_px / 2
    assert t.max() - t.min() > bar.length_px - 1.5
    centre = bar.centreline(5)[2]  # mid-length point bows by the sagitta along the left normal
    normal = np.array([-u[1], u[0]])
    assert (centre - [250.0, 175.0]) @ normal == pytest.approx(9.0, abs=1e-6)


@pytest.mark.parametrize("plane", ["head", "abdomen", "femur"])
def test_measuring_simulated_masks_reproduces_the_truth(frames, plane):
    measure, key = MEASURE[plane]
    for frame in frames[plane]:
        m = measure(frame.mask > 0, frame.truth.mm_per_px)
        assert m.withheld_reason is None, m.withheld_reason
        assert getattr(m, key) == pytest.approx(getattr(frame.truth, key), rel=0.005)
        if plane == "head":
            assert m.bpd_mm == pytest.approx(frame.truth.bpd_mm, rel=0.005)
            assert m.ofd_mm == pytest.approx(frame.truth.ofd_mm, rel=0.005)


@pytest.mark.parametrize("ga, index", [(14.0, 0), (40.0, 0), (22.0, 1), (37.0, 2)])
def test_sizes_follow_gestational_age(ga, index):
    plane = ("head", "abdomen", "femur")[index]
    truth = render_frame(plane, 5, ga_weeks=ga).truth
    value = (truth.hc_mm, truth.ac_mm, truth.fl_mm)[index]
    assert value == pytest.approx(mean_sizes_mm(ga)[index], rel=0.12)
    assert truth.ga_weeks == ga


def test_given_spacing_is_kept_and_the_age_fits_it():
    frame = render_frame("abdomen", 3, mm_per_px=0.1)
    assert frame.truth.mm_per_px == 0.1 and frame.mask.any()


def test_early_pregnancy_heads_are_small_in_frame_and_measure_back_to_their_truth():
    """The late-first-trimester heads training adds (HC18's smallest heads are 44-100 mm)."""
    for seed in (0, 1, 2):
        frame = render_frame("head", seed, early_pregnancy=True)
        t = frame.truth
        assert t.plane == "head" and 10.5 <= t.ga_weeks <= 14.0 and 35.0 <= t.hc_mm <= 110.0
        assert set(np.unique(frame.mask).tolist()) == {0, MASK_LABELS["head"]}
        target = frame.mask > 0
        assert not (target & ~frame.probe.fan_mask()).any()
        m = measure_head(target, t.mm_per_px)
        assert m.withheld_reason is None, m.withheld_reason
        assert m.hc_mm == pytest.approx(t.hc_mm, rel=0.005)
    again = render_frame("head", 2, early_pregnancy=True)
    assert np.array_equal(again.image, frame.image) and again.truth == frame.truth


@pytest.mark.parametrize("plane, ga_weeks", [("abdomen", None), ("head", 20.0)])
def test_early_pregnancy_is_only_a_head_whose_age_the_simulator_draws(plane, ga_weeks):
    with pytest.raises(ValueError, match="early_pregnancy"):
        render_frame(plane, 1, ga_weeks=ga_weeks, early_pregnancy=True)


def test_ellipse_mask_matches_the_pixel_centre_rule():
    from edge_fetal.biometry import Ellipse, rasterise_ellipse

    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.uniform(5, 200)
        e = Ellipse(rng.uniform(0, 300), rng.uniform(0, 200), a, a * rng.uniform(0.4, 1.0), rng.uniform(0, 180))
        assert np.array_equal(ellipse_mask(e, (200, 300)), rasterise_ellipse((200, 300), e))


def test_sweep_has_per_frame_truth_jitter_and_persistent_speckle():
    segments = [("head", 4), ("other", 2), ("femur", 3)]
    sweep = list(render_sweep(11, segments))
    assert [f.truth.plane for f in sweep] == ["head"] * 4 + ["other"] * 2 + ["femur"] * 3
    assert len({f.truth.ga_weeks for f in sweep}) == 1  # one fetus
    for f in sweep:
        assert set(np.unique(f.mask).tolist()) <= {0, f.truth.label}
        assert not f.image[~f.probe.fan_mask()].any()
    heads = [f.truth for f in sweep[:4]]
    assert len({round(t.hc_mm, 6) for t in heads}) > 1  # the section moves
    assert max(t.hc_mm for t in heads) / min(t.hc_mm for t in heads) < 1.1
    assert sweep[4].truth.mm_per_px == sweep[3].truth.mm_per_px  # "other" keeps the spacing
    for f in sweep[:4]:
        assert measure_head(f.mask > 0, f.truth.mm_per_px).hc_mm == pytest.approx(f.truth.hc_mm, rel=0.005)
    a, b = (sweep[i].image.astype(np.float32).ravel() for i in (1, 2))
    assert 0.5 < np.corrcoef(a, b)[0, 1] < 0.999
    again = list(render_sweep(11, segments))
    assert all(np.array_equal(x.image, y.image) and x.truth == y.truth for x, y in zip(sweep, again))


def test_scanner_overlay_leaves_the_target_alone():
    plain = render_frame("head", 4)
    dressed = render_frame("head", 4, scanner_overlay=True)
    target = plain.mask > 0
    assert np.array_equal(plain.image[target], dressed.image[target])
    assert np.array_equal(plain.mask, dressed.mask)


def test_paste_on_background_keeps_real_pixels_away_from_the_target(frames):
    background = frames["other"][0].image  # stands in for a real frame here
    exclude = np.zeros(background.shape, bool)
    exclude[250:300, 350:420] = True
    pasted = paste_on_background(background, "femur", 2, mm_per_px=0.12, exclude=exclude)
    assert pasted.truth.plane == "femur" and pasted.truth.mm_per_px == 0.12
    assert set(np.unique(pasted.mask).tolist()) == {0, 3}
    assert pasted.image.dtype == np.uint8 and pasted.image.shape == background.shape
    far = cv2.dilate((pasted.mask > 0).astype(np.uint8) | exclude.astype(np.uint8), np.ones((161, 161), np.uint8)) == 0
    assert far.any() and np.array_equal(pasted.image[far], background[far])
    with pytest.raises(ValueError):
        paste_on_background(background, "other", 2, mm_per_px=0.12)  # nothing to cover


def test_a_plan_renders_the_same_frame_every_time_with_its_own_mask_and_truth():
    plan = plan_frame("abdomen", 9)
    first, second = render_plan(plan, scanner_overlay=True), render_plan(plan, scanner_overlay=True)
    assert np.array_equal(first.image, second.image)
    assert np.array_equal(first.mask, plan.mask) and first.truth == plan.truth
    assert first.mask.shape == first.image.shape and (first.mask > 0).any()


@pytest.mark.parametrize("radius", [1.0, 6.4, 30.0, 80.0])
def test_disk_morphology_on_the_bounding_box_equals_the_whole_frame(radius):
    """Pasting crops its wide dilations and erosions: the crop must not change a pixel, even
    for targets at the frame's edge (where erosion treats the outside as set)."""
    rng = np.random.default_rng(int(radius))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(round(radius), 1) + 1,) * 2)
    for cx, cy in ((300, 200), (5, 4), (590, 390), (100, 395)):
        mask = np.zeros((400, 600), np.uint8)
        cv2.ellipse(mask, (cx, cy), (int(rng.integers(5, 120)), int(rng.integers(5, 90))), 30, 0, 360, 1, -1)
        for operation in (cv2.dilate, cv2.erode):
            assert np.array_equal(_morph_disk(mask > 0, radius, operation), operation(mask, disk).astype(bool))
    assert not _morph_disk(np.zeros((40, 60), bool), radius, cv2.dilate).any()


def test_texture_comparison_reports_histograms_and_speckle(tmp_path, frames):
    paths = []
    for i, frame in enumerate(frames["head"][:2]):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), frame.image)
    result = compare_texture(paths, [f.image for f in frames["abdomen"][:2]])
    assert result["real"]["n_frames"] == 2 and result["sim"]["n_frames"] == 2
    assert 0.0 <= result["histogram"]["hellinger"] <= 1.0 and result["histogram"]["emd_grey"] >= 0.0
    assert result["real"]["speckle_snr"] > 1.0 and result["sim"]["speckle_snr"] > 1.0
    assert "speckle SNR" in format_texture_table(result)
    same = compare_texture(paths, [f.image for f in frames["head"][:2]])
    assert same["histogram"]["emd_grey"] == pytest.approx(0.0, abs=1e-9)


def test_simulator_does_not_import_torch():
    code = "import sys, edge_fetal.data.simulator, edge_fetal.data.sim_sweep; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- biometry CSV -------------------------------------------------------------------------------


def test_biometry_csv_round_trip(tmp_path):
    rows = [
        BiometryRow("a.png", "head", 0.1234567, hc_mm=250.5, bpd_mm=70.25, ofd_mm=90.125),
        BiometryRow("b.png", "abdomen", 0.2, ac_mm=301.0),
        BiometryRow("c.png", "femur", 0.05, fl_mm=55.5),
        BiometryRow("d.png", "other", 0.15),
        BiometryRow("e.png", "head", 0.1, hc_mm=180.0),  # BPD/OFD not measured
    ]
    path = tmp_path / "bio.csv"
    write_biometry_csv(path, rows)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert read_biometry_csv(path) == rows


def test_simulated_set_is_written_balanced_and_readable(tmp_path):
    rows = write_simulated_set(tmp_path, 4, seed=3)
    assert [r.plane for r in rows] == list(PLANES)
    assert read_biometry_csv(tmp_path / CSV_NAME, images_dir=tmp_path) == rows
    for row in rows:
        assert row.filename == f"{rows.index(row):04d}_{row.plane}.png"
        mask = cv2.imread(str(tmp_path / mask_name(row.filename)), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and set(np.unique(mask).tolist()) <= {0, MASK_LABELS.get(row.plane, 0)}
        assert cv2.imread(str(tmp_path / row.filename), cv2.IMREAD_UNCHANGED).shape == (540, 800)


HEADER = ",".join(COLUMNS)


@pytest.mark.parametrize(
    "body, problem",
    [
        (f"{HEADER}\na.png,knee,0.1,,,,,\n", "unknown plane"),
        ("filename,plane,pixel_size_mm,hc_mm,bpd_mm,ofd_mm,ac_mm\na.png,abdomen,0.1,,,,200\n", "missing column"),
        (f"{HEADER}\na.png,head,0.1,2x0,,,,\n", "not a number"),
        (f"{HEADER}\na.png,head,-0.1,200,,,,\n", "positive"),
        (f"{HEADER}\na.png,head,,200,,,,\n", "pixel_size_mm is empty"),
        (f"{HEADER}\na.png,abdomen,0.1,200,,,,\n", "does not apply"),
        (f"{HEADER}\na.png,head,0.1,200,,,\n", "expected 8 cells"),
        (f"{HEADER}\na.png,other,0.1,,,,,\na.png,other,0.1,,,,,\n", "already listed"),
    ],
)
def test_malformed_biometry_csv_names_file_line_and_problem(tmp_path, body, problem):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(DatasetError) as info:
        read_biometry_csv(path)
    message = str(info.value)
    assert str(path) in message and problem in message
    if problem != "missing column":
        assert "line 2" in message or "line 3" in message


def test_missing_image_or_csv_is_a_dataset_error(tmp_path):
    path = tmp_path / "bio.csv"
    write_biometry_csv(path, [BiometryRow("gone.png", "other", 0.1)])
    with pytest.raises(DatasetError, match=r"line 2: image 'gone.png' not found"):
        read_biometry_csv(path, images_dir=tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        read_biometry_csv(tmp_path / "absent.csv")


def test_paste_on_a_real_hc18_frame_hides_its_head(hc18_dir):
    name = "010_HC"
    background = cv2.imread(str(hc18_dir / "training_set" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    ring = cv2.imread(str(hc18_dir / "training_set" / f"{name}_Annotation.png"), cv2.IMREAD_GRAYSCALE) > 0
    contours, _ = cv2.findContours(ring.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    head = cv2.drawContours(np.zeros(ring.shape, np.uint8), contours, -1, 1, cv2.FILLED) > 0
    pasted = paste_on_background(background, "abdomen", 0, mm_per_px=0.0799, exclude=head)
    assert set(np.unique(pasted.mask).tolist()) == {0, 2} and pasted.truth.ac_mm > 0
    assert pasted.image.shape == background.shape
    changed = pasted.image != background
    assert changed[head].mean() > 0.9  # the real head is painted over
