"""The training set is the same frame for frame whether one process or several make it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from edge_fetal.train.build_data import build_training_data  # noqa: E402
from edge_fetal.train.config import DataConfig  # noqa: E402

FRAMES = ("000_HC.png", "031_HC.png", "070_HC.png", "108_2HC.png", "165_HC.png", "235_HC.png")


@pytest.fixture
def small_hc18(hc18_dir, tmp_path):
    """Six real HC18 frames of six pregnancies, in HC18's own layout."""
    (tmp_path / "training_set").mkdir()
    rows = (hc18_dir / "training_set_pixel_size_and_HC.csv").read_text().splitlines()
    kept = [rows[0]] + [row for row in rows[1:] if row.split(",")[0] in FRAMES]
    (tmp_path / "training_set_pixel_size_and_HC.csv").write_text("\n".join(kept) + "\n")
    for name in FRAMES:
        for file in (name, name.replace(".png", "_Annotation.png")):
            (tmp_path / "training_set" / file).symlink_to(hc18_dir / "training_set" / file)
    return tmp_path


def test_two_worker_processes_build_exactly_the_data_of_one(small_hc18):
    cfg = DataConfig(input_hw=(176, 256), hc18_dir=str(small_hc18), sim_train=(2, 2, 2, 2), sim_val=(1, 1, 1, 1),
                     pasted_train=(2, 2, 2), pasted_val=(1, 1, 1), sim_early_heads_train=1, sim_early_heads_val=1)
    one, two = build_training_data(cfg, workers=1), build_training_data(cfg, workers=2)
    assert len(one.dataset.images) >= 6 + 12 + 2  # real heads, simulated frames, early heads (+ pasted that fit)
    for name in ("images", "labels", "plane", "groups", "has_mask"):
        assert np.array_equal(getattr(one.dataset, name), getattr(two.dataset, name)), name
    assert np.array_equal(one.train_rows, two.train_rows) and np.array_equal(one.val_rows, two.val_rows)
    assert one.description == two.description
    assert set(one.dataset.plane[one.val_rows].tolist()) == {0, 1, 2, 3}  # every plane on the validation side
