"""The training set: real HC18 heads + simulated frames of every plane, letterboxed to the model size.

Masks are brought to model resolution by area-averaging the source mask and keeping pixels at
least half covered, which keeps the project's convention (pixel centre inside the outline)
without a half-pixel bias. Real and simulated frames are split so that nothing seen in training
(HC18 pregnancy, simulated fetus, real background) appears in validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_fetal.calibration import letterbox
from edge_fetal.data.hc18 import HC18Item, head_mask, load_image, read_hc18, subject_split
from edge_fetal.data.simulator import paste_on_background, render_frame
from edge_fetal.errors import DatasetError
from edge_fetal.progress import progress
from edge_fetal.runtime.backend import PLANES
from edge_fetal.train.config import DataConfig
from edge_fetal.train.dataset import ArrayDataset

PASTED_PLANES = ("abdomen", "femur", "other")


@dataclass
class _Rows:
    """Frames collected so far, as lists, with the side of the split each belongs to."""

    images: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    planes: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    is_val: list = field(default_factory=list)
    is_real_head: list = field(default_factory=list)
    true_hc_mm: list = field(default_factory=list)  # a real head's HC truth; inf where none

    def add(self, image, labels, plane: str, group: str, is_val: bool, is_real_head: bool = False,
            true_hc_mm: float | None = None) -> None:
        self.is_real_head.append(is_real_head)
        self.true_hc_mm.append(np.inf if true_hc_mm is None else true_hc_mm)
        self.images.append(image)
        self.labels.append(labels)
        self.planes.append(PLANES.index(plane))
        self.groups.append(group)
        self.is_val.append(is_val)


@dataclass(frozen=True)
class TrainingData:
    """The dataset, its split rows, and what the manifest should say about them."""

    dataset: ArrayDataset
    train_rows: np.ndarray
    val_rows: np.ndarray
    description: dict


def to_model(image: np.ndarray, labels: np.ndarray, box: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Letterbox a frame and its label mask into `box` (S or (H, W); labels by half-coverage per class)."""
    mapping = letterbox(image.shape[:2], box)
    model_labels = np.zeros(mapping.model_hw, np.uint8)
    for label in np.unique(labels):
        if label:
            covered = mapping.to_model((labels == label).astype(np.float32)) >= 0.5
            model_labels[covered] = label
    return mapping.to_model(image), model_labels


def build_training_data(cfg: DataConfig) -> TrainingData:
    """Assemble real + simulated frames; deterministic for a given config."""
    hc18_dir = Path(cfg.hc18_dir)
    csv_path = hc18_dir / "training_set_pixel_size_and_HC.csv"
    if not csv_path.is_file():
        raise DatasetError(f"HC18 data not found at {hc18_dir} (data.hc18_dir in the config)")
    items = read_hc18(csv_path, hc18_dir / "training_set")
    train_items, val_items = subject_split(items, cfg.hc18_val_fraction, cfg.split_seed)
    rows = _Rows()
    _add_hc18(rows, train_items, val_items, cfg.input_box)
    _add_simulated(rows, cfg)
    _add_pasted(rows, train_items, val_items, cfg)

    is_val = np.array(rows.is_val)
    dataset = ArrayDataset(
        np.stack(rows.images), np.stack(rows.labels), np.ones(len(rows.images), bool),
        np.array(rows.planes, np.int64), groups=np.array(rows.groups),
    )
    is_real_head, true_hc_mm = np.array(rows.is_real_head), np.array(rows.true_hc_mm)
    train_rows = epoch_rows(is_val, is_real_head, true_hc_mm, cfg)
    description = {
        "hc18_train_images": len(train_items), "hc18_validation_images": len(val_items),
        "hc18_validation_subjects": sorted({item.subject for item in val_items}),
        "hc18_train_subjects": sorted({item.subject for item in train_items}),
        "simulated_train_per_plane": dict(zip(PLANES, cfg.sim_train)),
        "simulated_val_per_plane": dict(zip(PLANES, cfg.sim_val)),
        "simulated_early_pregnancy_heads_train": cfg.sim_early_heads_train,
        "simulated_early_pregnancy_heads_val": cfg.sim_early_heads_val,
        "pasted_on_real_train_per_plane": dict(zip(PASTED_PLANES, cfg.pasted_train)),
        "pasted_on_real_val_per_plane": dict(zip(PASTED_PLANES, cfg.pasted_val)),
        "hc18_small_heads_train": len(early_pregnancy_rows(~is_val, is_real_head, true_hc_mm, cfg)),
        "hc18_small_head_extra_repeats": cfg.hc18_small_head_repeat,
        "train_rows_per_epoch": int(len(train_rows)), "val_rows": int(is_val.sum()),
    }
    return TrainingData(dataset, train_rows, np.flatnonzero(is_val), description)


def epoch_rows(is_val: np.ndarray, is_real_head: np.ndarray, true_hc_mm: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """The rows of one training epoch: every training row once, each real head `hc18_repeat`
    times in all, and each early-pregnancy head (true HC under `hc18_small_head_hc_mm`)
    `hc18_small_head_repeat` times more."""
    train = ~is_val
    real = np.flatnonzero(train & is_real_head)
    small = early_pregnancy_rows(train, is_real_head, true_hc_mm, cfg)
    return np.concatenate([np.flatnonzero(train)] + [real] * (cfg.hc18_repeat - 1) + [small] * cfg.hc18_small_head_repeat)


def early_pregnancy_rows(among: np.ndarray, is_real_head: np.ndarray, true_hc_mm: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """The rows of `among` that are real heads with a true HC under `hc18_small_head_hc_mm`."""
    return np.flatnonzero(among & is_real_head & (true_hc_mm < cfg.hc18_small_head_hc_mm))


def _add_hc18(rows: _Rows, train_items: list[HC18Item], val_items: list[HC18Item], box: tuple[int, int]) -> None:
    tagged = [(item, False) for item in train_items] + [(item, True) for item in val_items]
    for item, is_val in progress(tagged, total=len(tagged), label="HC18 frames"):
        image, labels = to_model(load_image(item.image_path), head_mask(item).astype(np.uint8), box)
        rows.add(image, labels, "head", f"hc18:{item.subject}", is_val, is_real_head=True,
                 true_hc_mm=item.hc_mm)


def _add_simulated(rows: _Rows, cfg: DataConfig) -> None:
    jobs = [(plane, count, False) for plane, count in zip(PLANES, cfg.sim_train)]
    jobs += [(plane, count, True) for plane, count in zip(PLANES, cfg.sim_val)]
    seed = cfg.sim_seed * 1_000_000
    for plane, count, is_val in progress(jobs, total=len(jobs), label="simulated frames"):
        for _ in range(count):
            seed += 1
            _add_rendered(rows, plane, seed, is_val, cfg.input_box)
    seed = cfg.sim_seed * 1_000_000 + 700_000
    for is_val, count in ((False, cfg.sim_early_heads_train), (True, cfg.sim_early_heads_val)):
        for _ in progress(range(count), total=count, label="simulated early-pregnancy heads"):
            seed += 1
            _add_rendered(rows, "head", seed, is_val, cfg.input_box, early_pregnancy=True)


def _add_rendered(rows: _Rows, plane: str, seed: int, is_val: bool, box: tuple[int, int],
                  early_pregnancy: bool = False) -> None:
    """One simulated frame (scanner furniture on odd seeds), letterboxed into `box`, as its own fetus."""
    frame = render_frame(plane, seed, scanner_overlay=bool(seed % 2), early_pregnancy=early_pregnancy)
    image, labels = to_model(frame.image, frame.mask, box)
    rows.add(image, labels, plane, f"sim:{seed}", is_val)


def _add_pasted(rows: _Rows, train_items: list[HC18Item], val_items: list[HC18Item], cfg: DataConfig) -> None:
    """Simulated abdomen/femur/other on real HC18 backgrounds of the same side of the split."""
    seed = cfg.sim_seed * 1_000_000 + 500_000
    for items, counts, is_val in ((train_items, cfg.pasted_train, False), (val_items, cfg.pasted_val, True)):
        for plane, count in zip(PASTED_PLANES, counts):
            for index in range(count):
                seed += 1
                item = items[(seed * 7919) % len(items)]
                background = load_image(item.image_path)
                try:
                    frame = paste_on_background(background, plane, seed, mm_per_px=item.mm_per_px, exclude=head_mask(item))
                except ValueError:
                    continue  # no placement fits this background's fan: skip it
                image, labels = to_model(frame.image, frame.mask, cfg.input_box)
                rows.add(image, labels, plane, f"hc18:{item.subject}", is_val)
