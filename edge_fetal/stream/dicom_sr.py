"""`report_sr.dcm`: a finished scan's fused biometry as a DICOM Comprehensive SR document.

A PACS files it beside the scan's images, so the numbers reach the patient record without being
typed again (`stream --dicom-sr`). It is written once, from the final report, and holds only what
a sonographer could sign:
- lengths only in mm, when the pixel spacing was known; a run in pixels writes no SR at all;
- only biometrics that locked (stable over the scan); GA and EFW only when all their inputs locked;
- VerificationFlag UNVERIFIED: no clinician has checked them.

The content tree follows the sections of the OB-GYN Ultrasound Procedure Report (DICOM PS3.16,
TID 5000: Fetal Biometry, Fetal Long Bones, Fetus Summary), with codes from pydicom's code
dictionary (LOINC measurements, UCUM units). It has not been validated against that template, so
it names no template identifier. From a DICOM source it joins that study (the patient and study
attributes are copied); from any other source it opens a new study with empty patient attributes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ComprehensiveSRStorage, ExplicitVRLittleEndian, generate_uid

from edge_fetal import __version__
from edge_fetal.errors import EdgeFetalError

# Copied from a DICOM source so the SR files under the same patient and study.
IDENTITY_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                     "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")
_GRAM = Code("g", "UCUM", "gram")  # not in pydicom's UCUM dictionary
# (report key, section, concept, unit) in the order a report reads. The Fetus Summary items are
# the report's estimates (report["ga"], report["efw"]); the others its fused lengths (report["biometry"]).
_ITEMS = (
    ("hc", codes.DCM.FetalBiometry, codes.LN.HeadCircumference, codes.UCUM.Millimeter),
    ("bpd", codes.DCM.FetalBiometry, codes.LN.BiparietalDiameter, codes.UCUM.Millimeter),
    ("ofd", codes.DCM.FetalBiometry, codes.LN.OccipitalFrontalDiameter, codes.UCUM.Millimeter),
    ("ac", codes.DCM.FetalBiometry, codes.LN.AbdominalCircumference, codes.UCUM.Millimeter),
    ("fl", codes.DCM.FetalLongBones, codes.LN.FemurLength, codes.UCUM.Millimeter),
    ("ga", codes.DCM.FetusSummary, codes.LN.GestationalAge, codes.UCUM.Week),
    ("efw", codes.DCM.FetusSummary, codes.LN.EstimatedWeight, _GRAM),
)


class StructuredReportError(EdgeFetalError):
    """The SR could not be written; report.json and the other outputs are unaffected."""


@dataclass(frozen=True)
class SrContent:
    """What goes into the SR (key → value, in report order) and what was left out, with the reason."""

    reported: dict[str, float]
    left_out: dict[str, str]


def sr_content(report: dict) -> SrContent:
    """Pick from a final stream report what an SR may carry (see the module docstring)."""
    reported, left_out = {}, {}
    for key, section, _concept, _unit in _ITEMS:
        estimate = section == codes.DCM.FetusSummary
        entry = report.get(key) if estimate else report["biometry"].get(key)
        if entry is None:
            continue
        if estimate and not entry["inputs_locked"]:
            left_out[key] = "not all of its inputs locked"
        elif not estimate and entry["unit"] != "mm":
            left_out[key] = f"in {entry['unit']}, not mm: the pixel spacing is unknown"
        elif not estimate and not entry["locked"]:
            left_out[key] = "not locked: it did not settle over the scan"
        else:
            reported[key] = float(entry["value"])
    return SrContent(reported, left_out)


def write_structured_report(report: dict, path: str | Path, identity: Dataset | None = None,
                            now: dt.datetime | None = None) -> dict:
    """Write the SR of a final `report` to `path`; return the `dicom_sr` entry of report.json
    (file, what is reported, what is left out and why). `identity`: a pydicom Dataset with the
    source's patient and study attributes (`dicom_identity`), or None. Writes nothing, and says why,
    when no length is in mm or nothing locked."""
    content = sr_content(report)
    entry = {"file": None, "reported": list(content.reported), "left_out": content.left_out}
    if not content.reported:
        entry["reason"] = ("no pixel spacing: lengths are in pixels, and an SR carries mm only"
                           if any(e["unit"] != "mm" for e in report["biometry"].values())
                           else "nothing to report: no biometric locked")
        return entry
    dataset = _sr_dataset(content, report, identity, now or dt.datetime.now())
    path = Path(path)
    try:
        dataset.save_as(str(path), enforce_file_format=True)
    except (OSError, ValueError) as error:
        raise StructuredReportError(f"cannot write the DICOM SR {path}: {error}") from error
    entry["file"] = path.name
    return entry


def dicom_identity(ds: Dataset) -> Dataset:
    """The patient and study attributes of a source DICOM dataset (those it has), for its SR."""
    identity = Dataset()
    for keyword in IDENTITY_KEYWORDS:
        if keyword in ds:
            setattr(identity, keyword, ds.data_element(keyword).value)
    return identity


def _sr_dataset(content: SrContent, report: dict, identity: Dataset | None, now: dt.datetime) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ComprehensiveSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SpecificCharacterSet = ComprehensiveSRStorage, "ISO_IR 192"
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    for keyword in IDENTITY_KEYWORDS:  # type 2: present, empty when unknown
        setattr(ds, keyword, "")
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime = generate_uid(), date, time
    for keyword in IDENTITY_KEYWORDS:
        if identity is not None and keyword in identity:
            setattr(ds, keyword, identity.data_element(keyword).value)
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "SR", generate_uid(), 900, 1
    ds.SeriesDescription = "edge-fetal automatic biometry"
    ds.Manufacturer, ds.SoftwareVersions = "edge-fetal", __version__
    ds.ReferencedPerformedProcedureStepSequence, ds.PerformedProcedureCodeSequence = [], []
    ds.ContentDate, ds.ContentTime = date, time
    ds.CompletionFlag = "PARTIAL" if report["stopped_by"].startswith("error") else "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = [_code(codes.DCM.OBGYNUltrasoundProcedureReport)]
    ds.ContentSequence = [*_observer(), *_sections(content), _comment(report)]
    return ds


def _observer() -> list[Dataset]:
    """The observer context: a device, named."""
    kind = _item("HAS OBS CONTEXT", "CODE", codes.DCM.ObserverType)
    kind.ConceptCodeSequence = [_code(codes.DCM.Device)]
    name = _item("HAS OBS CONTEXT", "TEXT", codes.DCM.DeviceObserverName)
    name.TextValue = f"edge-fetal {__version__}"
    return [kind, name]


def _sections(content: SrContent) -> list[Dataset]:
    """One container per section, each holding its NUM items, in report order."""
    sections: dict[Code, list[Dataset]] = {}
    for key, section, concept, unit in _ITEMS:
        if key in content.reported:
            sections.setdefault(section, []).append(_number(concept, content.reported[key], unit))
    containers = []
    for section, items in sections.items():
        container = _item("CONTAINS", "CONTAINER", section)
        container.ContinuityOfContent, container.ContentSequence = "SEPARATE", items
        containers.append(container)
    return containers


def _comment(report: dict) -> Dataset:
    """A line a reader of the SR needs: where the numbers came from and that nobody checked them."""
    item = _item("CONTAINS", "TEXT", codes.DCM.Comment)
    item.TextValue = (f"Measured automatically by edge-fetal {__version__} from {report['source']}; "
                      f"calibration: {report['calibration']['source']}. Not verified by a clinician.")[:1024]
    return item


def _number(concept: Code, value: float, unit: Code) -> Dataset:
    item = _item("CONTAINS", "NUM", concept)
    measured = Dataset()
    measured.NumericValue = f"{value:.1f}" if unit.value != "wk" else f"{value:.2f}"
    measured.MeasurementUnitsCodeSequence = [_code(unit)]
    item.MeasuredValueSequence = [measured]
    return item


def _item(relationship: str, value_type: str, concept: Code) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, value_type
    item.ConceptNameCodeSequence = [_code(concept)]
    return item


def _code(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code.value, code.scheme_designator, code.meaning
    return item
