"""`edge-fetal measure`: one-shot biometry of still frames with the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from edge_fetal.calibration import spacing_table_from_csv
from edge_fetal.cli import main
from edge_fetal.engines import default_model_path
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge_fetal.stills import measure_still

ASSETS = Path(__file__).resolve().parents[1] / "edge_fetal" / "assets" / "hc18"
HEAD = ASSETS / "278_HC.png"
TRUE_HC_MM = 178.0  # the HC18 expert's value for this frame (hc18_examples.csv)


@pytest.fixture(scope="module")
def backend():
    with OnnxRuntimeBackend(default_model_path()) as opened:
        yield opened


@pytest.fixture(scope="module")
def head_spacing():
    return spacing_table_from_csv(ASSETS / "hc18_examples.csv")[HEAD.name]


def test_a_real_head_frame_is_measured_in_mm_with_its_spacing(backend, head_spacing):
    result = measure_still(HEAD, backend, head_spacing)
    assert result.plane == "head" and result.unit == "mm"
    assert result.values["hc"] == pytest.approx(TRUE_HC_MM, rel=0.03)
    assert set(result.values) == {"hc", "bpd", "ofd"}


def test_without_spacing_lengths_stay_in_pixels_and_say_why(backend, head_spacing):
    result = measure_still(HEAD, backend, None)
    assert result.unit == "px" and "no pixel spacing" in result.note
    assert result.values["hc"] == pytest.approx(TRUE_HC_MM / head_spacing.mm_per_px, rel=0.03)


def test_a_dicom_frame_uses_its_own_calibration(backend, head_spacing, write_cine, tmp_path):
    grey = cv2.imread(str(HEAD), cv2.IMREAD_GRAYSCALE)
    path = write_cine(tmp_path / "head.dcm", grey[None], delta_cm=head_spacing.mm_per_px / 10.0)
    from_dicom = measure_still(path, backend, None)
    from_png = measure_still(HEAD, backend, head_spacing)
    assert from_dicom.unit == "mm" and "SequenceOfUltrasoundRegions" in from_dicom.calibration
    assert from_dicom.values["hc"] == pytest.approx(from_png.values["hc"], rel=1e-6)


def test_a_bad_file_is_reported_and_the_others_still_measured(tmp_path, capsys):
    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    out = tmp_path / "results.json"
    code = main(["measure", str(junk), str(HEAD), "--pixel-spacing", "0.2", "--backend", "onnxruntime",
                 "--json", str(out)])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert code == 2  # one file failed
    assert "notes.png" in printed and "not a readable image" in printed
    assert results[0]["plane"] is None and results[1]["plane"] == "head" and results[1]["unit"] == "mm"


def test_a_missing_file_is_named(tmp_path, capsys):
    code = main(["measure", str(tmp_path / "absent.png"), "--backend", "onnxruntime"])
    assert code == 2 and "no such file" in capsys.readouterr().out
