"""The training set: real HC18 heads + simulated frames of every plane, letterboxed to the model size.

Masks are brought to model resolution by area-averaging the source mask and keeping pixels at
least half covered, which keeps the project's convention (pixel centre inside the outline)
without a half-pixel bias. Real and simulated frames are split so that nothing seen in training
(HC18 pregnancy, simulated fetus, real background) appears in validation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_fetal.data.hc18 import HC18Item, read_hc18, subject_split
from edge_fetal.errors import DatasetError
from edge_fetal.runtime.backend import PLANES
from edge_fetal.train.config import DataConfig
from edge_fetal.train.dataset import ArrayDataset
from edge_fetal.train.frame_jobs import FrameJob, make_frames

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


def build_training_data(cfg: DataConfig, workers: int = 1) -> TrainingData:
    """Assemble real + simulated frames, made by `workers` processes; the same for a given config
    whatever the number of workers."""
    hc18_dir = Path(cfg.hc18_dir)
    csv_path = hc18_dir / "training_set_pixel_size_and_HC.csv"
    if not csv_path.is_file():
        raise DatasetError(f"HC18 data not found at {hc18_dir} (data.hc18_dir in the config)")
    items = read_hc18(csv_path, hc18_dir / "training_set")
    train_items, val_items = subject_split(items, cfg.hc18_val_fraction, cfg.split_seed)
    jobs = _hc18_jobs(train_items, val_items, cfg.input_box) + _simulated_jobs(cfg) + _pasted_jobs(train_items, val_items, cfg)
    rows = _Rows()
    for job, frame in make_frames(jobs, workers):
        if frame is not None:  # None: a pasted target that fits nowhere in its background's fan
            rows.add(*frame, job.plane, job.group, job.is_val, is_real_head=job.kind == "hc18",
                     true_hc_mm=job.item.hc_mm if job.kind == "hc18" else None)

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


def _hc18_jobs(train_items: list[HC18Item], val_items: list[HC18Item], box: tuple[int, int]) -> list[FrameJob]:
    tagged = [(item, False) for item in train_items] + [(item, True) for item in val_items]
    return [FrameJob("hc18", "head", f"hc18:{item.subject}", is_val, box, item=item) for item, is_val in tagged]


def _simulated_jobs(cfg: DataConfig) -> list[FrameJob]:
    """Simulated frames of every plane, then early-pregnancy heads; each its own fetus, from its own seed."""
    jobs = []
    seeds = itertools.count(cfg.sim_seed * 1_000_000 + 1)
    for counts, is_val in ((cfg.sim_train, False), (cfg.sim_val, True)):
        for plane, count in zip(PLANES, counts):
            for seed in itertools.islice(seeds, count):
                jobs.append(FrameJob("simulated", plane, f"sim:{seed}", is_val, cfg.input_box, seed=seed))
    seeds = itertools.count(cfg.sim_seed * 1_000_000 + 700_001)
    for is_val, count in ((False, cfg.sim_early_heads_train), (True, cfg.sim_early_heads_val)):
        for seed in itertools.islice(seeds, count):
            jobs.append(FrameJob("simulated", "head", f"sim:{seed}", is_val, cfg.input_box, seed=seed,
                                 early_pregnancy=True))
    return jobs


def _pasted_jobs(train_items: list[HC18Item], val_items: list[HC18Item], cfg: DataConfig) -> list[FrameJob]:
    """Simulated abdomen/femur/other on real HC18 backgrounds of the same side of the split."""
    jobs = []
    seeds = itertools.count(cfg.sim_seed * 1_000_000 + 500_001)
    for items, counts, is_val in ((train_items, cfg.pasted_train, False), (val_items, cfg.pasted_val, True)):
        for plane, count in zip(PASTED_PLANES, counts):
            for seed in itertools.islice(seeds, count):
                item = items[(seed * 7919) % len(items)]
                jobs.append(FrameJob("pasted", plane, f"hc18:{item.subject}", is_val, cfg.input_box, seed=seed, item=item))
    return jobs
