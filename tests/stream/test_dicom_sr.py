"""The DICOM SR of a scan: what a PACS would file must be what the report locked, in mm, for the
right patient, and never a length whose pixel spacing is unknown."""

from __future__ import annotations

import datetime as dt

import pydicom
import pytest
from pydicom.dataset import Dataset

from edge_fetal.stream.dicom_sr import (
    StructuredReportError, dicom_identity, write_structured_report,
)
from edge_fetal.stream.report import sr_summary

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


def _entry(value: float, locked: bool = True, unit: str = "mm") -> dict:
    return {"value": value, "unit": unit, "locked": locked}


def _report(**overrides) -> dict:
    report = {
        "final": True, "stopped_by": "end of source", "source": "DICOM scan.dcm",
        "calibration": {"source": "DICOM SequenceOfUltrasoundRegions region 0", "note": None},
        "biometry": {"hc": _entry(281.4), "bpd": _entry(76.2), "ac": _entry(252.9), "fl": _entry(55.1, locked=False)},
        "ga": {"value": 30.71, "inputs_locked": True}, "efw": {"value": 1612.0, "inputs_locked": False},
    }
    report.update(overrides)
    return report


def _numbers(ds: Dataset) -> dict[str, tuple[str, float, str]]:
    """LOINC meaning → (section meaning, value, UCUM unit) for every NUM item under a section."""
    found = {}
    for section in ds.ContentSequence:
        for item in section.get("ContentSequence", []):
            if item.ValueType == "NUM":
                measured = item.MeasuredValueSequence[0]
                found[item.ConceptNameCodeSequence[0].CodeMeaning] = (
                    section.ConceptNameCodeSequence[0].CodeMeaning, float(measured.NumericValue),
                    measured.MeasurementUnitsCodeSequence[0].CodeValue)
    return found


def test_sr_holds_the_locked_values_in_mm_and_leaves_out_the_rest(tmp_path):
    entry = write_structured_report(_report(), tmp_path / "report_sr.dcm")
    ds = pydicom.dcmread(tmp_path / "report_sr.dcm")

    assert ds.SOPClassUID == COMPREHENSIVE_SR and ds.Modality == "SR"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "125000"  # OB-GYN Ultrasound Procedure Report
    assert ds.VerificationFlag == "UNVERIFIED" and ds.CompletionFlag == "COMPLETE"
    assert _numbers(ds) == {
        "Head Circumference": ("Fetal Biometry", 281.4, "mm"),
        "Biparietal Diameter": ("Fetal Biometry", 76.2, "mm"),
        "Abdominal Circumference": ("Fetal Biometry", 252.9, "mm"),
        "Gestational Age": ("Fetus Summary", 30.71, "wk"),
    }
    assert entry["file"] == "report_sr.dcm" and entry["reported"] == ["hc", "bpd", "ac", "ga"]
    assert set(entry["left_out"]) == {"fl", "efw"} and "not locked" in entry["left_out"]["fl"]
    assert sr_summary(entry).startswith("DICOM SR report_sr.dcm: HC, BPD, AC, GA (FL left out, not locked")


def test_no_sr_when_lengths_are_in_pixels(tmp_path):
    report = _report(biometry={"hc": _entry(612.0, unit="px"), "ac": _entry(540.0, unit="px")}, ga=None, efw=None)
    entry = write_structured_report(report, tmp_path / "report_sr.dcm")

    assert entry["file"] is None and "pixel spacing" in entry["reason"]
    assert not (tmp_path / "report_sr.dcm").exists()
    assert sr_summary(entry).startswith("DICOM SR not written: no pixel spacing")


def test_sr_joins_the_source_study_and_patient(tmp_path):
    source = Dataset()
    source.PatientName, source.PatientID, source.PatientSex = "Doe^Jane", "MRN-0042", "F"
    source.StudyInstanceUID, source.AccessionNumber = "1.2.3.4.5.6", "ACC-77"
    source.Rows = 540  # not identity: must not be copied
    write_structured_report(_report(), tmp_path / "a.dcm", identity=dicom_identity(source),
                            now=dt.datetime(2026, 11, 29, 8, 30))
    ds = pydicom.dcmread(tmp_path / "a.dcm")

    assert (str(ds.PatientName), ds.PatientID, ds.PatientSex) == ("Doe^Jane", "MRN-0042", "F")
    assert ds.StudyInstanceUID == "1.2.3.4.5.6" and ds.AccessionNumber == "ACC-77"
    assert ds.SeriesInstanceUID != ds.StudyInstanceUID and "Rows" not in ds
    assert ds.ContentDate == "20261129" and ds.ContentTime == "083000"


def test_without_a_dicom_source_the_sr_opens_its_own_study(tmp_path):
    write_structured_report(_report(), tmp_path / "a.dcm")
    write_structured_report(_report(), tmp_path / "b.dcm")
    a, b = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "b.dcm")

    assert a.PatientName == "" and a.PatientID == ""
    assert a.StudyInstanceUID != b.StudyInstanceUID


def test_a_run_that_ended_in_an_error_is_marked_partial(tmp_path):
    write_structured_report(_report(stopped_by="error: StreamError: 100 frames failed"), tmp_path / "a.dcm")
    assert pydicom.dcmread(tmp_path / "a.dcm").CompletionFlag == "PARTIAL"


def test_an_unwritable_path_is_a_clear_error(tmp_path):
    with pytest.raises(StructuredReportError, match="cannot write the DICOM SR .*missing"):
        write_structured_report(_report(), tmp_path / "missing" / "report_sr.dcm")
