"""The HC18 reader: items, masks that carry the experts' outline, subject-aware split, bad input."""

from __future__ import annotations

import pytest

from edge_fetal.biometry import measure_head
from edge_fetal.data.hc18 import head_mask, read_hc18, subject_split
from edge_fetal.errors import DatasetError


def test_reads_every_row_with_spacing_and_truth(hc18_dir):
    items = read_hc18(hc18_dir / "training_set_pixel_size_and_HC.csv", hc18_dir / "training_set")
    assert len(items) == 796
    first = items[0]
    assert first.name == "000_HC.png" and first.subject == "000"
    assert first.mm_per_px == pytest.approx(0.0691358041432)
    assert first.hc_mm == pytest.approx(44.3)


def test_mask_from_annotation_reproduces_the_csv_hc(hc18_dir):
    items = read_hc18(hc18_dir / "training_set_pixel_size_and_HC.csv", hc18_dir / "training_set")[:20]
    for item in items:
        measured = measure_head(head_mask(item), item.mm_per_px)
        assert measured.hc_mm == pytest.approx(item.hc_mm, abs=0.1), item.name


def test_split_keeps_pregnancies_together(hc18_dir):
    items = read_hc18(hc18_dir / "training_set_pixel_size_and_HC.csv", hc18_dir / "training_set")
    train, validation = subject_split(items, 0.2, seed=7)
    assert len(train) + len(validation) == len(items)
    assert not {item.subject for item in train} & {item.subject for item in validation}
    assert len(validation) >= 150
    assert subject_split(items, 0.2, seed=7) == (train, validation)


def test_missing_image_names_the_file_and_line(tmp_path):
    (tmp_path / "images").mkdir()
    csv_path = tmp_path / "hc.csv"
    csv_path.write_text("filename,pixel size(mm),head circumference (mm)\n001_HC.png,0.1,100\n")
    with pytest.raises(DatasetError, match=r"hc.csv:2 \(001_HC.png\): image not found"):
        read_hc18(csv_path, tmp_path / "images")


@pytest.mark.parametrize(
    "row, message",
    [("001_HC.png,-0.1,100", "positive finite"), ("001_HC.png,abc,100", "pixel spacing"), ("x_HC.png,0.1,100", "subject")],
)
def test_bad_rows_are_dataset_errors(tmp_path, row, message):
    (tmp_path / "001_HC.png").write_bytes(b"")
    (tmp_path / "x_HC.png").write_bytes(b"")
    csv_path = tmp_path / "hc.csv"
    csv_path.write_text(f"filename,pixel size(mm),head circumference (mm)\n{row}\n")
    with pytest.raises(DatasetError, match=message):
        read_hc18(csv_path, tmp_path)


def test_wrong_columns_are_named(tmp_path):
    csv_path = tmp_path / "hc.csv"
    csv_path.write_text("name,size\n")
    with pytest.raises(DatasetError, match="expected columns"):
        read_hc18(csv_path, tmp_path)
