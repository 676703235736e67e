"""`edge-fetal demo`: the main job on data bundled with the package, so it runs on a fresh machine.

Until the model ships, the demo measures the bundled real HC18 frames from their expert outlines
(the geometry and clinical half of the engine) and writes each frame with its fitted ellipse.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2

from edge_fetal.biometry import measure_head
from edge_fetal.biometry.clinical import ga_from_hc_weeks
from edge_fetal.data.hc18 import head_mask, load_image, read_hc18
from edge_fetal.evaluation.report import format_rows

ATTRIBUTION = "Frames: HC18 (van den Heuvel et al. 2018, PLoS ONE 13(8): e0200412), CC BY 4.0"


def bundled_hc18_dir() -> Path:
    """The folder of real HC18 example frames shipped inside the package."""
    return Path(str(resources.files("edge_fetal") / "assets" / "hc18"))


def run_demo(out_dir: Path) -> list[dict]:
    """Measure every bundled frame, save overlays under `out_dir`, return one row per frame."""
    folder = bundled_hc18_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in read_hc18(folder / "hc18_examples.csv", folder):
        measurement = measure_head(head_mask(item), item.mm_per_px)
        overlay = cv2.cvtColor(load_image(item.image_path), cv2.COLOR_GRAY2BGR)
        ellipse = measurement.geometry
        box = ((ellipse.center_x_px, ellipse.center_y_px), (ellipse.major_axis_px, ellipse.minor_axis_px), ellipse.angle_deg)
        cv2.ellipse(overlay, box, (0, 255, 0), 2)
        cv2.imwrite(str(out_dir / item.name), overlay)
        rows.append({
            "image": item.name, "hc_mm": measurement.hc_mm, "bpd_mm": measurement.bpd_mm, "ofd_mm": measurement.ofd_mm,
            "ga_weeks": ga_from_hc_weeks(measurement.hc_mm) if measurement.hc_mm else None,
            "csv_hc_mm": item.hc_mm, "note": measurement.withheld_reason or "",
        })
    print(format_rows(rows, ["image", "hc_mm", "bpd_mm", "ofd_mm", "ga_weeks", "csv_hc_mm", "note"]))
    print(f"\nGA: Hadlock 1984 from HC. {ATTRIBUTION}.")
    print(f"Overlays written to {out_dir}/")
    return rows
