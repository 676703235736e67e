"""Geometry check without a model: measure each HC18 frame from its expert annotation.

This isolates the biometry (mask → outline → mm) from the network: any error here is the
geometry's own, and it bounds what a perfect segmentation could achieve.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from edge_fetal.biometry import Measurement, measure_head
from edge_fetal.data.hc18 import HC18Item, head_mask


@dataclass(frozen=True)
class AnnotationResult:
    """One frame: truth, what the geometry measured, and whether it would be shown."""

    name: str
    hc_true_mm: float | None
    measurement: Measurement

    @property
    def hc_measured_mm(self) -> float | None:
        """The measured HC in mm, also when withheld (the geometry check wants every frame)."""
        hc_px = self.measurement.values_px.get("hc")
        if hc_px is None or self.measurement.mm_per_px is None:
            return None
        return hc_px * self.measurement.mm_per_px


def measure_annotations(items: list[HC18Item]) -> Iterator[AnnotationResult]:
    """Measure every item's annotated head mask as the model's output would be measured."""
    for item in items:
        yield AnnotationResult(item.name, item.hc_mm, measure_head(head_mask(item), item.mm_per_px))
