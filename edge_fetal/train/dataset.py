"""In-memory training data: arrays in, augmented torch samples out, plus a leak-free split.

The caller (HC18 reader + simulator, assembled in `build_data.py`) fills four arrays:
images uint8 [N,H,W], labels uint8 [N,H,W] (0 background, 1 head, 2 abdomen, 3 femur),
has_mask bool [N] (False: the label array is ignored), plane int64 [N] (0 head, 1 abdomen,
2 femur, 3 other); optionally groups int64 [N] (e.g. HC18 patient id) so that a split never puts
frames of one subject on both sides.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class ArrayDataset(Dataset):
    """Rows `indices` of the arrays (all rows by default); `augmenter` applied on the fly.

    `dataset[i]` → dict: image float32 [1,H,W] in [0,1], label int64 [H,W], has_mask bool,
    plane int64. Augmentation randomness comes from (seed, epoch, row): reproducible, independent
    of the order of access, and resumable; call `set_epoch` at the start of each epoch.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        has_mask: np.ndarray,
        plane: np.ndarray,
        *,
        groups: np.ndarray | None = None,
        indices: Sequence[int] | None = None,
        augmenter: Augment | None = None,
        seed: int = 0,
    ):
        n = len(images)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise ValueError(f"images must be uint8 [N,H,W], got {images.dtype} {images.shape}")
        if labels.dtype != np.uint8 or labels.shape != images.shape:
            raise ValueError(f"labels must be uint8 {images.shape}, got {labels.dtype} {labels.shape}")
        if has_mask.dtype != np.bool_ or has_mask.shape != (n,):
            raise ValueError(f"has_mask must be bool [{n}], got {has_mask.dtype} {has_mask.shape}")
        if not np.issubdtype(plane.dtype, np.integer) or plane.shape != (n,) or (plane < 0).any():
            raise ValueError(f"plane must be non-negative int [{n}], got {plane.dtype} {plane.shape}")
        groups = np.arange(n) if groups is None else np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape [{n}], got {groups.shape}")
        self.images, self.labels, self.has_mask = images, labels, has_mask
        self.plane, self.groups = plane.astype(np.int64), groups
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
            raise ValueError("indices out of range")
        self.augmenter, self.seed, self.epoch = augmenter, seed, 0

    def view(
        self, indices: Sequence[int], augmenter: Augment | None = None, seed: int | None = None
    ) -> "ArrayDataset":
        """Another dataset over the same arrays (no copy), e.g. the train or validation part."""
        return ArrayDataset(self.images, self.labels, self.has_mask, self.plane, groups=self.groups,
                            indices=indices, augmenter=augmenter,
                            seed=self.seed if seed is None else seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.indices[i])
        image, label = self.images[row], self.labels[row]
        if self.augmenter is not None:
            rng = np.random.default_rng((self.seed, self.epoch, row))
            image, label = self.augmenter(image, label, rng)
        return {
            "image": torch.from_numpy(image.astype(np.float32) / 255.0)[None],
            "label": torch.from_numpy(label.astype(np.int64)),
            "has_mask": torch.tensor(bool(self.has_mask[row])),
            "plane": torch.tensor(self.plane[row]),
        }


def split_indices(
    plane: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, val rows): whole groups go to one side, stratified by each group's first plane."""
    rng = np.random.default_rng(seed)
    unique_groups, first = np.unique(groups, return_index=True)
    val_groups = []
    for p in np.unique(plane[first]):
        members = unique_groups[plane[first] == p]
        members = members[rng.permutation(len(members))]
        n_val = int(round(val_fraction * len(members)))
        if val_fraction > 0 and len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)
        val_groups.append(members[:n_val])
    in_val = np.isin(groups, np.concatenate(val_groups) if val_groups else [])
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)
