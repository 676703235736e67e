"""Simulated B-mode ultrasound frames of the four plane classes, with exact masks and biometry.

    frame = render_frame("head", seed=3)
    frame.image   # uint8 [540, 800], black outside the fan
    frame.mask    # uint8 labels: 0 background, 1 head, 2 abdomen, 3 femur (own structure only)
    frame.truth   # SimTruth: plane, ga_weeks, mm_per_px, hc/bpd/ofd/ac/fl in mm, geometry

Truth convention (what `edge_fetal.biometry` measures): head and abdomen are continuous
ellipses (the head's is the outer border of the skull echo, where HC18's experts draw
it: `sim_render.HC18_OUTLINE_OFFSET_MM` outside the bone); HC and AC are their Ramanujan perimeters,
BPD and OFD their minor and major axes, times mm/px. The femur is a slightly curved bar with
flat ends; FL is its extent along the chord between its end points. Masks hold the pixels whose
centres lie inside the continuous shape. The same seed gives the same frame.

How a frame is made: `sim_scene` (fetus, spacing, placement) with `sim_recipes` (the tissue
features of each plane) -> `sim_tissue` (scattering and attenuation maps on the probe's polar
grid) -> `sim_imaging` (scatterers, pulse, envelope, TGC, log compression, scan conversion), run by
`sim_render`. `sim_sweep` makes video, `sim_paste` blends targets into real frames, `sim_texture`
compares texture with HC18. numpy and OpenCV only: the runtime uses this for the demo and
`--source sim`, so torch is never imported here.
"""

from edge_fetal.data.sim_anatomy import MASK_LABELS, PLANES, FemurShape, Motion, SubjectSizes, mean_sizes_mm
from edge_fetal.data.sim_imaging import FRAME_SIZE_WH, ProbeGeometry
from edge_fetal.data.sim_paste import paste_on_background
from edge_fetal.data.sim_render import SimFrame, SimTruth, render_frame, render_scene, truth_for, truth_mask
from edge_fetal.data.sim_scene import Scene, sample_scene
from edge_fetal.data.sim_sweep import DEFAULT_SEGMENTS, render_sweep
from edge_fetal.data.sim_texture import compare_texture, format_texture_table, texture_stats

__all__ = [
    "DEFAULT_SEGMENTS", "FRAME_SIZE_WH", "MASK_LABELS", "PLANES", "FemurShape", "Motion", "ProbeGeometry", "Scene",
    "SimFrame", "SimTruth", "SubjectSizes", "compare_texture", "format_texture_table", "mean_sizes_mm",
    "paste_on_background", "render_frame", "render_scene", "render_sweep", "sample_scene", "texture_stats",
    "truth_for", "truth_mask",
]
