"""The frames of the training set as jobs: what each row is, and how to make it at model size.

Making the frames (reading and shrinking HC18 frames, rendering simulated ones) is pure work per
frame, so the jobs run in worker processes, one per core, and still come back in a fixed order:
the training set is the same frame for frame however many workers made it. This module does not
import torch, so that a worker starts quickly.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from edge_fetal.calibration import letterbox
from edge_fetal.data.hc18 import HC18Item, head_mask, load_image
from edge_fetal.data.simulator import paste_on_background, render_frame
from edge_fetal.progress import progress

ModelFrame = tuple[np.ndarray, np.ndarray]  # image and labels, letterboxed into the model box


@dataclass(frozen=True)
class FrameJob:
    """One training row: where its frame comes from, and the tags the row carries.

    kind: "hc18" (a real head, `item`), "simulated" (rendered from `seed`) or "pasted" (a
    simulated `plane` target rendered from `seed` onto the real background of `item`).
    """

    kind: Literal["hc18", "simulated", "pasted"]
    plane: str
    group: str
    is_val: bool
    box: tuple[int, int]
    seed: int = 0
    item: HC18Item | None = None
    early_pregnancy: bool = False


def to_model(image: np.ndarray, labels: np.ndarray, box: int | tuple[int, int]) -> ModelFrame:
    """Letterbox a frame and its label mask into `box` (S or (H, W); labels by half-coverage per class)."""
    mapping = letterbox(image.shape[:2], box)
    model_labels = np.zeros(mapping.model_hw, np.uint8)
    for label in np.unique(labels):
        if label:
            covered = mapping.to_model((labels == label).astype(np.float32)) >= 0.5
            model_labels[covered] = label
    return mapping.to_model(image), model_labels


def make_frame(job: FrameJob) -> ModelFrame | None:
    """The job's frame at model size; None for a pasted target that fits nowhere in its background's fan."""
    if job.kind == "hc18":
        return to_model(load_image(job.item.image_path), head_mask(job.item).astype(np.uint8), job.box)
    if job.kind == "pasted":
        background = load_image(job.item.image_path)
        try:
            frame = paste_on_background(background, job.plane, job.seed, mm_per_px=job.item.mm_per_px,
                                        exclude=head_mask(job.item))
        except ValueError:
            return None
    else:  # scanner furniture on odd seeds, as on HC18 frames
        frame = render_frame(job.plane, job.seed, scanner_overlay=bool(job.seed % 2),
                             early_pregnancy=job.early_pregnancy)
    return to_model(frame.image, frame.mask, job.box)


def make_frames(jobs: list[FrameJob], workers: int) -> Iterator[tuple[FrameJob, ModelFrame | None]]:
    """Each job with its frame, in the order of `jobs`, made by `workers` processes (1: in this one)."""
    if workers <= 1:
        yield from progress(zip(jobs, map(make_frame, jobs)), total=len(jobs), label="training frames")
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch's threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread_per_worker) as pool:
        made = pool.map(make_frame, jobs, chunksize=8)
        yield from progress(zip(jobs, made), total=len(jobs), label="training frames")


def _one_thread_per_worker() -> None:
    """The workers are the parallelism: OpenCV's own threads would only compete with them."""
    cv2.setNumThreads(1)
