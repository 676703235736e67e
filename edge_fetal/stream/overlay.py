"""The overlay: the frame in colour with the measured shape, the plane, fused values, GA, fps, latency.

Per-frame geometry is drawn only when the frame is of the stable plane: green when its values are
shown, amber with the reason when they are withheld. Lengths are in mm only when the spacing is
known; otherwise in px with "no spacing" on screen.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_fetal.biometry import Ellipse, FemurAxis
from edge_fetal.stream.record import BIOMETRIC_ORDER, FrameRecord

GREEN, AMBER, WHITE, CYAN = (80, 220, 80), (0, 170, 255), (235, 235, 235), (255, 220, 120)


def draw_overlay(record: FrameRecord) -> np.ndarray:
    """Grey frame + record → BGR uint8 image of the same size."""
    image = cv2.cvtColor(record.frame.image, cv2.COLOR_GRAY2BGR)
    height, width = image.shape[:2]
    scale = float(np.clip(width / 1000.0, 0.35, 1.2))
    thickness = max(1, round(2 * scale))
    state, measurement = record.state, record.measurement
    if record.frame_in_plane and measurement is not None and measurement.geometry is not None:
        _draw_geometry(image, measurement.geometry, GREEN if state.shown else AMBER, thickness)

    lines: list[tuple[str, tuple[int, int, int]]] = []
    stable = state.plane or "searching"
    lines.append((f"{state.frame_plane} {state.frame_probability:.2f}   plane: {stable}", WHITE))
    if state.shown:
        lines.append(("  ".join(f"{n.upper()} {_length(v, state.unit)}" for n, v in state.shown.items()), GREEN))
    elif record.frame_in_plane and state.note:
        lines.append((f"withheld: {state.note}", AMBER))
    for name in BIOMETRIC_ORDER:
        fused = state.fused.get(name)
        if fused is not None:
            lock = "  LOCKED" if fused.locked else ""
            lines.append((f"{name.upper()} {fused.value:.1f} +/- {fused.spread:.1f} {fused.unit}  n={fused.frames_used}{lock}",
                          CYAN if fused.locked else WHITE))
    if state.ga is not None:
        flag = "  (outside range)" if state.ga.flag else ""
        lines.append((f"GA {state.ga.value:.1f} wk  {state.ga.formula}{flag}", CYAN))
    if state.efw is not None:
        lines.append((f"EFW {state.efw.value:.0f} g  {state.efw.formula}", CYAN))
    _put_lines(image, lines, (8, 8), scale)

    status = f"{record.fps:.1f} fps  latency {record.latency_ms.get('end_to_end', 0.0):.0f} ms"
    if record.spacing is None:
        status += "  no spacing: lengths in px"
    _put_lines(image, [(status, WHITE if record.spacing is not None else AMBER)],
               (8, height - 8 - round(24 * scale)), scale)
    return image


def _length(value: float, unit: str | None) -> str:
    return f"{value:.1f} {unit or ''}".rstrip()


def _draw_geometry(image: np.ndarray, geometry, colour, thickness: int) -> None:
    if isinstance(geometry, Ellipse):
        box = ((geometry.center_x_px, geometry.center_y_px), (geometry.major_axis_px, geometry.minor_axis_px),
               geometry.angle_deg)
        cv2.ellipse(image, box, colour, thickness, cv2.LINE_AA)
    elif isinstance(geometry, FemurAxis):
        a = np.round(geometry.end_a_xy).astype(int)
        b = np.round(geometry.end_b_xy).astype(int)
        cv2.line(image, tuple(a.tolist()), tuple(b.tolist()), colour, thickness, cv2.LINE_AA)
        for end in (a, b):  # calipers
            cv2.drawMarker(image, tuple(end.tolist()), colour, cv2.MARKER_CROSS, 6 + 4 * thickness, thickness)


def _put_lines(image: np.ndarray, lines, origin: tuple[int, int], scale: float) -> None:
    """Text lines on a darkened panel (readable on bright tissue, whatever the font's metrics)."""
    if not lines:
        return
    x, y = origin
    font_scale, step = 0.6 * scale, round(26 * scale) + 4
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)[0] for text, _ in lines]
    height, width = image.shape[:2]
    x1, y1 = min(width, x + max(w for w, _ in sizes) + 8), min(height, y + step * len(lines) + step // 2)
    panel = image[max(0, y):y1, max(0, x - 4):x1]
    panel //= 3
    for text, colour in lines:
        y += step
        cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, 1, cv2.LINE_AA)
