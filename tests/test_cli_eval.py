"""`edge-fetal eval --from-annotations`: figures printed and written, bad input as one clear line."""

from __future__ import annotations

import json
import shutil

from edge_fetal.cli import main


def test_eval_from_annotations_writes_summary_and_table(hc18_dir, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    lines = (hc18_dir / "training_set_pixel_size_and_HC.csv").read_text().splitlines()[:6]
    for line in lines[1:]:
        name = line.split(",")[0]
        for suffix in ("", "_Annotation"):
            source = hc18_dir / "training_set" / name.replace(".png", f"{suffix}.png")
            shutil.copy(source, images / source.name)
    (tmp_path / "hc.csv").write_text("\n".join(lines) + "\n")

    code = main(["eval", "--format", "hc18", "--csv", str(tmp_path / "hc.csv"), "--images", str(images),
                 "--from-annotations", "--json", str(tmp_path / "out.json")])

    assert code == 0
    report = json.loads((tmp_path / "out.json").read_text())
    assert len(report["per_image"]) == 5
    assert report["summary"]["hc_every_image"]["count"] == 5
    assert report["summary"]["hc_every_image"]["mae_mm"] < 0.1
    assert "MAE" in capsys.readouterr().out


def test_eval_with_missing_csv_is_one_clear_line(tmp_path, capsys):
    code = main(["eval", "--csv", str(tmp_path / "nope.csv"), "--images", str(tmp_path), "--from-annotations"])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("edge-fetal: error: HC18 CSV not found") and "Traceback" not in error


def test_eval_validation_split_of_a_biometry_csv_is_refused(tmp_path, capsys):
    """The held-out split names HC18 pregnancies; on a biometry CSV it would silently keep no frame."""
    (tmp_path / "biometry.csv").write_text("filename,plane,pixel_size_mm,hc_mm,bpd_mm,ofd_mm,ac_mm,fl_mm\n")
    code = main(["eval", "--format", "biometry", "--csv", str(tmp_path / "biometry.csv"), "--images", str(tmp_path),
                 "--split", "validation"])
    assert code == 2 and "--format hc18" in capsys.readouterr().err

