"""Anatomy recipes: the tissue features of each plane, laid out in the target's own axes.

Each target recipe returns (target shape, build) for a spacing, centre and angle; the target is
fixed first (it has to fit the fan), then build(rng, tissue_np_per_mm) draws the features around
and inside it, in painting order. Amplitudes are RMS scattering relative to soft tissue (bone is
+25 to +33 dB, fluid -34 dB); attenuations are one-way nepers per mm, bone's set by how much of
the beam it lets through.
"""

from __future__ import annotations

import math

from edge_fetal.biometry import Ellipse
from edge_fetal.data.sim_anatomy import FemurShape, SubjectSizes, semi_axes_for_perimeter
from edge_fetal.data.sim_imaging import ProbeGeometry
from edge_fetal.data.sim_tissue import FLUID_AMPLITUDE, Feature


def _bone_np_per_mm(transmission: float, thickness_mm: float) -> float:
    """One-way attenuation that lets `transmission` of the amplitude through `thickness_mm`."""
    return -math.log(transmission) / max(thickness_mm, 0.2)


def _local_point(e: Ellipse, u: float, v: float) -> tuple[float, float]:
    """Frame point at normalised coordinates (u along the major axis / a, v along the minor / b)."""
    t = math.radians(e.angle_deg)
    du, dv = u * e.semi_major_px, v * e.semi_minor_px
    return e.center_x_px + du * math.cos(t) - dv * math.sin(t), e.center_y_px + du * math.sin(t) + dv * math.cos(t)


def _polar_uv(radius: float, phi: float) -> tuple[float, float]:
    return radius * math.cos(phi), radius * math.sin(phi)


def _sub_ellipse(e: Ellipse, uv: tuple[float, float], a: float, b: float, angle_deg: float) -> Ellipse:
    """A small ellipse at normalised position `uv` of `e`, its angle relative to `e`'s major axis."""
    if b > a:
        a, b, angle_deg = b, a, angle_deg + 90.0
    return Ellipse(*_local_point(e, *uv), a, b, (e.angle_deg + angle_deg) % 180.0)


def _bar(e: Ellipse, uv0: tuple[float, float], uv1: tuple[float, float], width: float, sag: float = 0.0) -> FemurShape:
    """A (curved) bar between two points given in `e`'s normalised axes."""
    return FemurShape(_local_point(e, *uv0), _local_point(e, *uv1), width, sag)


def _head(s: SubjectSizes, mmpx: float, cx: float, cy: float, angle: float):
    a, b = semi_axes_for_perimeter(s.hc_mm / mmpx, s.cephalic_index)
    skull = Ellipse(cx, cy, a, b, angle)

    def build(rng, tissue: float) -> tuple[Feature, ...]:
        t = s.skull_thickness_mm / mmpx
        front = 1.0 if rng.random() < 0.5 else -1.0
        brain = Ellipse(cx, cy, a - t, b - t, angle)
        scalp = 3.0 / mmpx
        feats = [
            Feature(Ellipse(cx, cy, a + scalp, b + scalp, angle), 0.9, tissue, ring_px=scalp, texture=0.3),
            Feature(brain, rng.uniform(0.2, 0.32), 0.7 * tissue, texture=0.45),
            Feature(skull, rng.uniform(25.0, 45.0), _bone_np_per_mm(rng.uniform(0.5, 0.75), s.skull_thickness_mm),
                    ring_px=t, specular=0.93, texture=0.25),
        ]
        falx = max(0.6 / mmpx, 2.0)
        gap = rng.uniform(-0.2, 0.2)
        feats += [
            Feature(_bar(brain, (-0.93, 0.0), (gap - 0.08, 0.0), falx), 2.0, tissue, specular=0.6),
            Feature(_bar(brain, (gap + 0.08, 0.0), (0.93, 0.0), falx), 1.6, tissue, specular=0.6),
        ]
        csp = rng.uniform(2.0, 4.0) / mmpx  # cavum septi pellucidi: fluid box between two walls
        ends = ((front * 0.18, 0.0), (front * 0.40, 0.0))
        feats += [Feature(_bar(brain, *ends, csp + 2 * falx), 1.5, tissue),
                  Feature(_bar(brain, *ends, csp), FLUID_AMPLITUDE, 0.03 * tissue)]
        for side in (-1.0, 1.0):  # thalami (hypoechoic) and choroid plexus in the atria (echogenic)
            feats.append(Feature(_sub_ellipse(brain, (-front * 0.06, side * 0.16), 0.16 * (a - t), 0.10 * (b - t),
                                              side * 15.0), 0.12, 0.7 * tissue, texture=0.3))
            feats.append(Feature(_sub_ellipse(brain, (-front * 0.45, side * 0.33), 0.13 * (a - t), 0.055 * (b - t),
                                              -side * 10.0), rng.uniform(1.5, 3.0), tissue, texture=0.3))
        return tuple(feats)

    return skull, build


def early_head(s: SubjectSizes, mmpx: float, cx: float, cy: float, angle: float):
    """A late-first-trimester head: a thin, faint skull that lets most of the beam through, a brain
    about as grey as the tissue around it, and the large echogenic choroid plexuses that fill
    most of each hemisphere at that age ("butterfly"); no cavum septi pellucidi yet."""
    a, b = semi_axes_for_perimeter(s.hc_mm / mmpx, s.cephalic_index)
    skull = Ellipse(cx, cy, a, b, angle)

    def build(rng, tissue: float) -> tuple[Feature, ...]:
        t = max(s.skull_thickness_mm / mmpx, 1.5)
        brain = Ellipse(cx, cy, a - t, b - t, angle)
        scalp = max(1.0 / mmpx, 2.0)
        feats = [
            Feature(Ellipse(cx, cy, a + scalp, b + scalp, angle), 0.8, tissue, ring_px=scalp, texture=0.3),
            Feature(brain, rng.uniform(0.25, 0.8), 0.7 * tissue, texture=0.5),
            Feature(skull, rng.uniform(2.0, 10.0), _bone_np_per_mm(rng.uniform(0.8, 0.95), s.skull_thickness_mm),
                    ring_px=t, specular=0.9, texture=0.4),
            Feature(_bar(brain, (-0.93, 0.0), (0.93, 0.0), max(0.4 / mmpx, 1.5)), 1.5, tissue, specular=0.6),
        ]
        for side in (-1.0, 1.0):
            feats.append(Feature(_sub_ellipse(brain, (rng.uniform(-0.1, 0.1), side * 0.45), 0.6 * (a - t),
                                              0.3 * (b - t), side * rng.uniform(0.0, 12.0)),
                                 rng.uniform(1.5, 3.0), tissue, texture=0.35))
        return tuple(feats)

    return skull, build


def early_sac(rng, head: Ellipse, mmpx: float, tissue: float) -> list[Feature]:
    """The fluid around an early head, its bright wall, and the fetal trunk beside the head.

    The fluid pocket is the head's ellipse grown 1.3-2.4 times and shifted so that, in most
    frames, the head lies against its wall: there the skull has tissue instead of fluid outside it.
    """
    k = rng.uniform(1.3, 2.4)
    direction = rng.uniform(0.0, 2.0 * math.pi)
    push = (k - 1.0) * rng.uniform(0.8, 1.0) if rng.random() < 0.65 else (k - 1.0) * rng.uniform(0.0, 0.5)
    sac_centre = _local_point(head, *_polar_uv(push, direction))
    sac = Ellipse(*sac_centre, k * head.semi_major_px, k * head.semi_minor_px, head.angle_deg)
    features = [Feature(sac, FLUID_AMPLITUDE, 0.03 * tissue, ragged=0.06)]
    if rng.random() < 0.5:  # the sac wall (chorion and decidua): a bright band
        features.append(Feature(sac, rng.uniform(1.5, 2.5), tissue, ring_px=max(1.5 / mmpx, 2.0), texture=0.3))
    if rng.random() < 0.7:  # the trunk, beyond one end of the head, touching or just overlapping it
        end = 1.0 if rng.random() < 0.5 else -1.0
        a, b = head.semi_major_px * rng.uniform(0.9, 1.4), head.semi_minor_px * rng.uniform(0.6, 0.9)
        swing = head.angle_deg + rng.uniform(-35.0, 35.0)
        reach = end * (head.semi_major_px + 0.9 * a)
        t = math.radians(swing)
        trunk = Ellipse(head.center_x_px + reach * math.cos(t), head.center_y_px + reach * math.sin(t), a, b, swing % 180.0)
        features.append(Feature(trunk, rng.uniform(0.5, 0.9), tissue, texture=0.45))
    return features


def _abdomen(s: SubjectSizes, mmpx: float, cx: float, cy: float, angle: float):
    a, b = semi_axes_for_perimeter(s.ac_mm / mmpx, s.abdomen_aspect)
    outline = Ellipse(cx, cy, a, b, angle)

    def build(rng, tissue: float) -> tuple[Feature, ...]:
        g = (s.ga_weeks - 14.0) / 26.0
        wall = rng.uniform(1.5, 3.0) / mmpx
        feats = [
            Feature(outline, rng.uniform(0.45, 0.65), 0.9 * tissue, texture=0.5),  # liver and bowel
            Feature(outline, 1.1, tissue, ring_px=wall, texture=0.3),  # abdominal wall
            Feature(outline, rng.uniform(1.6, 2.4), tissue, ring_px=max(0.7 / mmpx, 2.0), specular=0.6),  # skin
        ]
        spine = rng.uniform(0, 2 * math.pi)
        stomach = spine + math.pi + rng.uniform(-0.9, 0.9)
        size = rng.uniform(0.8, 1.2)
        stomach_angle = math.degrees(stomach) + 90 + rng.uniform(-20, 20)
        feats.append(Feature(_sub_ellipse(outline, _polar_uv(0.42, stomach), 0.24 * size * a, 0.15 * size * a,
                                          stomach_angle), FLUID_AMPLITUDE, 0.03 * tissue))
        vein = stomach + rng.uniform(0.6, 1.2) * (1 if rng.random() < 0.5 else -1)  # umbilical vein
        feats.append(Feature(_bar(outline, _polar_uv(0.85, vein), _polar_uv(0.15, vein + 0.8),
                                  rng.uniform(1.5, 3.0) / mmpx, sag=rng.uniform(-0.08, 0.08) * a),
                             FLUID_AMPLITUDE, 0.03 * tissue))
        feats.append(Feature(_sub_ellipse(outline, _polar_uv(0.5, spine + 0.25), 1.5 / mmpx, 1.5 / mmpx, 0.0),
                             FLUID_AMPLITUDE, 0.03 * tissue))  # aorta
        body = (1.5 + 2.5 * g) / mmpx  # vertebral body radius; laminae behind it
        bone = _bone_np_per_mm(rng.uniform(0.15, 0.3), 2.0 * body * mmpx)
        feats.append(Feature(_sub_ellipse(outline, _polar_uv(0.68, spine), body, 0.85 * body, math.degrees(spine)),
                             20.0, bone, specular=0.4))
        for side in (-1.0, 1.0):
            lamina = _sub_ellipse(outline, _polar_uv(0.84, spine + side * 0.12), 0.7 * body, 0.5 * body, 0.0)
            feats.append(Feature(lamina, 18.0, bone, specular=0.4))
            rib = spine + side * rng.uniform(1.1, 1.7)
            tangent = math.degrees(math.atan2(b * math.cos(rib), -a * math.sin(rib)))
            rib_shape = _sub_ellipse(outline, _polar_uv(1.0 - 1.3 * wall / b, rib), rng.uniform(0.08, 0.14) * a,
                                     max(0.8 / mmpx, 2.0), tangent)
            feats.append(Feature(rib_shape, 12.0, _bone_np_per_mm(0.4, 1.6), specular=0.5))
        return tuple(feats)

    return outline, build


def _femur(s: SubjectSizes, mmpx: float, cx: float, cy: float, angle: float):
    h = 0.5 * s.fl_mm / mmpx
    t = math.radians(angle)
    ux, uy = math.cos(t), math.sin(t)
    sag = 2.0 * h * s.femur_bend
    bone = FemurShape((cx - h * ux, cy - h * uy), (cx + h * ux, cy + h * uy), s.femur_width_mm / mmpx, sag)

    def build(rng, tissue: float) -> tuple[Feature, ...]:
        w = bone.width_px
        deg = math.degrees(t) % 180.0
        mid = (cx - 0.5 * sag * uy, cy + 0.5 * sag * ux)
        thigh = Ellipse(*mid, h + rng.uniform(4, 10) / mmpx, 0.5 * w + rng.uniform(6, 14) / mmpx, deg)
        feats = [Feature(thigh, rng.uniform(0.6, 0.9), tissue, texture=0.4)]
        for sgn in (-1.0, 1.0):  # cartilaginous epiphyses beyond the ossified shaft
            c = (cx + sgn * ux * (h + 2.5 / mmpx), cy + sgn * uy * (h + 2.5 / mmpx))
            cap = Ellipse(*c, max(3.0 / mmpx, 0.5 * w + 1.5 / mmpx), 2.5 / mmpx, deg + 90.0)
            feats.append(Feature(cap, 0.2, tissue))
        feats.append(Feature(bone, rng.uniform(25.0, 45.0), _bone_np_per_mm(rng.uniform(0.08, 0.2), s.femur_width_mm),
                             specular=0.5, texture=0.2))
        return tuple(feats)

    return bone, build


def other_features(rng, mmpx: float, probe: ProbeGeometry, tissue: float) -> tuple[Feature, ...]:
    """No target: cord loops, a fetal part without a measurable section, a few bright flecks."""
    feats = []
    w, h = probe.width_px, probe.height_px

    def anywhere() -> tuple[float, float]:
        return rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.3 * h, 0.9 * h)

    if rng.random() < 0.7:  # a limb or trunk cut obliquely: echogenic, elongated, no outline echo
        r = rng.uniform(12, 35) / mmpx
        feats.append(Feature(Ellipse(*anywhere(), r, r * rng.uniform(0.3, 0.6), rng.uniform(0, 180)),
                             rng.uniform(0.6, 0.9), tissue, texture=0.5, ragged=0.08))
    for _ in range(int(rng.integers(0, 6))):  # umbilical cord loops: jelly ring, vessel lumen
        r = rng.uniform(3.5, 7.0) / mmpx
        c = anywhere()
        feats += [Feature(Ellipse(*c, r, r * rng.uniform(0.7, 1.0), rng.uniform(0, 180)), 1.3, tissue, texture=0.3),
                  Feature(Ellipse(*c, 0.45 * r, 0.4 * r, rng.uniform(0, 180)), FLUID_AMPLITUDE, 0.03 * tissue)]
    for _ in range(int(rng.integers(0, 3))):  # short bone flecks with shadows (not a femur: short)
        x, y = anywhere()
        t = rng.uniform(0, math.pi)
        half = rng.uniform(1.5, 4.0) / mmpx
        dx, dy = half * math.cos(t), half * math.sin(t)
        fleck = FemurShape((x - dx, y - dy), (x + dx, y + dy), max(1.0 / mmpx, 2.0), 0.0)
        feats.append(Feature(fleck, rng.uniform(10.0, 25.0), _bone_np_per_mm(0.3, 1.0), specular=0.5))
    return tuple(feats)


TARGET_RECIPES = {"head": _head, "abdomen": _abdomen, "femur": _femur}
