"""The shipped model on a simulated sweep with known truth (a seed the demo and training never used).

This is the product's promise on one scan: the fused HC, AC and FL land within 2 % of the truth,
the plane segments come in the order scanned, and no per-frame value is shown outside its plane.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_fetal.data.simulator import render_sweep
from edge_fetal.engines import default_model_path
from edge_fetal.runtime.onnxruntime_backend import OnnxRuntimeBackend
from edge_fetal.stream import StreamConfig, run_stream
from edge_fetal.stream.readers import ArrayReader
from edge_fetal.stream.sources import FrameSource
from edge_fetal.calibration import PixelSpacing

SEGMENTS = (("head", 30), ("other", 10), ("abdomen", 30), ("other", 10), ("femur", 30))
SEED = 777_001
BIOMETRIC_PLANE = {"hc": "head", "ac": "abdomen", "fl": "femur"}


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    frames = list(render_sweep(SEED, SEGMENTS, ga_weeks=30.0))
    reader = ArrayReader([f.image for f in frames], fps=25.0, truths=[f.truth for f in frames],
                         spacings=[PixelSpacing(f.truth.mm_per_px, "simulator truth") for f in frames])
    out = tmp_path_factory.mktemp("sweep")
    with OnnxRuntimeBackend(default_model_path()) as backend:
        report = run_stream(FrameSource(reader), backend, StreamConfig(), out)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return frames, report, events


def test_fused_values_within_two_percent_of_truth(sweep_run):
    frames, report, _ = sweep_run
    for name, plane in BIOMETRIC_PLANE.items():
        truth = np.mean([getattr(f.truth, f"{name}_mm") for f in frames if f.truth.plane == plane])
        fused = report["biometry"][name]["value"]
        assert fused == pytest.approx(truth, rel=0.02), f"{name}: fused {fused:.1f} mm, truth {truth:.1f} mm"


def test_plane_segments_are_found_in_scan_order(sweep_run):
    _, _, events = sweep_run
    stable = [e["stable_plane"] for e in events if e["stable_plane"] is not None]
    order = [plane for i, plane in enumerate(stable) if i == 0 or plane != stable[i - 1]]
    structures = [plane for plane in order if plane != "other"]
    assert structures == ["head", "abdomen", "femur"], order


def test_no_value_is_shown_outside_its_plane(sweep_run):
    frames, _, events = sweep_run
    for frame, event in zip(frames, events):
        for name in event["measurements"]:
            if "withheld" in event["measurements"][name]:
                continue
            plane = {"bpd": "head", "ofd": "head"}.get(name, BIOMETRIC_PLANE.get(name))
            assert event["stable_plane"] == plane == frame.truth.plane, (event["frame"], name)


def test_a_dicom_scan_gets_an_sr_for_its_patient_with_the_fused_values(tmp_path, write_cine):
    """`stream --dicom-sr` on a scanner's DICOM cine: the SR files under the scan's patient and
    study and carries the head biometry that report.json fused, in mm."""
    import pydicom

    from edge_fetal.cli import main

    frames = list(render_sweep(SEED, (("head", 30),), ga_weeks=30.0))
    path = write_cine(tmp_path / "scan.dcm", np.stack([f.image for f in frames]),
                      delta_cm=frames[0].truth.mm_per_px / 10.0)
    scan = pydicom.dcmread(path)
    scan.PatientID, scan.StudyInstanceUID = "MRN-0042", "1.2.826.0.1.3680043.2.1125.42"
    scan.save_as(path, enforce_file_format=True)
    out = tmp_path / "out"

    assert main(["stream", "--source", str(path), "--dicom-sr", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    sr = pydicom.dcmread(out / "report_sr.dcm")
    assert sr.PatientID == "MRN-0042" and sr.StudyInstanceUID == "1.2.826.0.1.3680043.2.1125.42"
    reported = {item.ConceptNameCodeSequence[0].CodeMeaning: float(item.MeasuredValueSequence[0].NumericValue)
                for section in sr.ContentSequence for item in section.get("ContentSequence", [])}
    assert report["dicom_sr"]["reported"] and "hc" in report["dicom_sr"]["reported"]
    assert reported["Head Circumference"] == pytest.approx(report["biometry"]["hc"]["value"], abs=0.05)
