"""Pure geometry and clinical maths: masks → ellipses / femur axis → lengths in mm. No I/O, no model."""

from edge_fetal.biometry.ellipse import Ellipse, ramanujan_perimeter, rasterise_ellipse
from edge_fetal.biometry.femur import FemurAxis
from edge_fetal.biometry.measure import (
    NO_SPACING_REASON,
    Measurement,
    QualityLimits,
    ShapeQuality,
    measure_abdomen,
    measure_femur,
    measure_head,
)

MEASURE_BY_STRUCTURE = {"head": measure_head, "abdomen": measure_abdomen, "femur": measure_femur}

__all__ = [
    "Ellipse", "FemurAxis", "MEASURE_BY_STRUCTURE", "Measurement", "NO_SPACING_REASON", "QualityLimits",
    "ShapeQuality", "measure_abdomen", "measure_femur", "measure_head", "ramanujan_perimeter",
    "rasterise_ellipse",
]
