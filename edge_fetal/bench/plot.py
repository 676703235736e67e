"""The benchmark figure, drawn with OpenCV (no plotting library needed on an edge box).

Top: the latency distribution of every model-only variant on a log axis (each call a dot; p50 a
bar, p95 and p99 ticks). Bottom: scaling — latency against input size, throughput against batch
size, throughput against concurrent streams.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

WHITE, INK, GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)
COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140), (194, 119, 227)]
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img, text, xy, scale=0.45, colour=INK, anchor="left") -> None:
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    x, y = xy
    x = x - w if anchor == "right" else x - w // 2 if anchor == "centre" else x
    cv2.putText(img, text, (int(x), int(y + h // 2)), FONT, scale, colour, 1, cv2.LINE_AA)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] on a linear axis."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    return [v for v in np.arange(math.floor(lo / step) * step, hi + step * 0.5, step)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks between lo and hi on a log axis (every 1..9 multiple when that gives fewer than 3)."""
    for multiples in ((1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in multiples if lo <= m * 10 ** e <= hi]
        if len(ticks) >= 3:
            return ticks
    return ticks or [lo, hi]


class Panel:
    """A plotting area at (x0, y0, w, h) of the canvas with data limits; x may be logarithmic."""

    def __init__(self, img, box, xlim, ylim, xlog=False):
        self.img, (self.x0, self.y0, self.w, self.h) = img, box
        self.xlog = xlog
        self.xlim = tuple(math.log10(v) for v in xlim) if xlog else xlim
        self.ylim = ylim

    def px(self, x: float, y: float) -> tuple[int, int]:
        x = math.log10(max(x, 1e-9)) if self.xlog else x
        fx = (x - self.xlim[0]) / ((self.xlim[1] - self.xlim[0]) or 1.0)
        fy = (y - self.ylim[0]) / ((self.ylim[1] - self.ylim[0]) or 1.0)
        return int(self.x0 + fx * self.w), int(self.y0 + self.h - fy * self.h)

    def axes(self, title: str, xlabel: str, ylabel: str, xticks, yticks, xfmt="{:g}", yfmt="{:g}") -> None:
        for x in xticks:
            px, _ = self.px(x, self.ylim[0])
            cv2.line(self.img, (px, self.y0), (px, self.y0 + self.h), GRID, 1)
            _text(self.img, xfmt.format(x), (px, self.y0 + self.h + 14), anchor="centre")
        for y in yticks:
            _, py = self.px(self.xlim[0] if not self.xlog else 10 ** self.xlim[0], y)
            cv2.line(self.img, (self.x0, py), (self.x0 + self.w, py), GRID, 1)
            _text(self.img, yfmt.format(y), (self.x0 - 6, py), anchor="right")
        cv2.rectangle(self.img, (self.x0, self.y0), (self.x0 + self.w, self.y0 + self.h), INK, 1)
        _text(self.img, title, (self.x0 + self.w // 2, self.y0 - 16), 0.55, anchor="centre")
        _text(self.img, xlabel, (self.x0 + self.w // 2, self.y0 + self.h + 36), anchor="centre")
        if ylabel:
            _text(self.img, ylabel, (self.x0 - 6, self.y0 - 14), 0.4, anchor="right")

    def series(self, xs, ys, colour, label: str | None = None, values: bool = True) -> None:
        points = [self.px(x, y) for x, y in zip(xs, ys) if y is not None]
        for a, b in zip(points, points[1:]):
            cv2.line(self.img, a, b, colour, 2, cv2.LINE_AA)
        for (px, py), y in zip(points, [y for y in ys if y is not None]):
            cv2.circle(self.img, (px, py), 4, colour, -1, cv2.LINE_AA)
            if values:
                _text(self.img, f"{y:.0f}" if abs(y) >= 100 else f"{y:.3g}", (px + 5, py - 10), 0.38, colour)
        if label and points:
            _text(self.img, label, (points[-1][0] - 4, points[-1][1] + 16), 0.4, colour, anchor="right")


def _distribution(img, box, variants: list[tuple[str, np.ndarray]]) -> None:
    values = np.concatenate([t for _, t in variants if len(t)]) if variants else np.array([1.0])
    lo, hi = max(float(values.min()) * 0.8, 1e-3), float(values.max()) * 1.25
    panel = Panel(img, box, (lo, hi), (0, len(variants)), xlog=True)
    panel.axes("model-only latency per call (batch 1): dots = calls, bar = p50, ticks = p95 / p99",
               "ms (log scale)", "", log_ticks(lo, hi), [])
    rng = np.random.default_rng(0)
    row_h = box[3] / max(len(variants), 1)
    for i, (name, times) in enumerate(variants):
        colour = COLOURS[i % len(COLOURS)]
        centre = int(box[1] + (i + 0.5) * row_h)
        _text(img, name, (box[0] - 8, centre), 0.45, colour, anchor="right")
        for t in times:
            x, _ = panel.px(float(t), 0)
            cv2.circle(img, (x, centre + int(rng.uniform(-0.25, 0.25) * row_h)), 2, colour, -1)
        if len(times):
            p50, p95, p99 = np.percentile(times, [50, 95, 99])
            x50 = panel.px(p50, 0)[0]
            cv2.line(img, (x50, centre - int(0.38 * row_h)), (x50, centre + int(0.38 * row_h)), INK, 3)
            for p in (p95, p99):
                xp = panel.px(p, 0)[0]
                cv2.line(img, (xp, centre - int(0.2 * row_h)), (xp, centre + int(0.2 * row_h)), INK, 1)
            _text(img, f"p50 {p50:.3g}  p99 {p99:.3g} ms", (box[0] + box[2] + 8, centre), 0.4)


def _scaling(img, box, points: list[dict], key: str, fields: list[tuple[str, str]], title: str, xlabel: str, ylabel: str):
    if not points:
        _text(img, f"{title}: not measured", (box[0] + box[2] // 2, box[1] + box[3] // 2), anchor="centre")
        return
    xs = [p[key] for p in points]
    ys_all = [p[f] for p in points for f, _ in fields if p.get(f) is not None] or [1.0]
    x_pad = (max(xs) - min(xs)) * 0.08 or 1.0
    panel = Panel(img, box, (min(xs) - x_pad, max(xs) + x_pad), (0, max(ys_all) * 1.2))
    panel.axes(title, xlabel, ylabel, xs, [t for t in nice_ticks(0, max(ys_all) * 1.15) if t <= panel.ylim[1]])
    for i, (field, label) in enumerate(fields):
        panel.series(xs, [p.get(field) for p in points], COLOURS[i % len(COLOURS)], label)


def draw_figure(path: Path, title: str, distribution: list[tuple[str, np.ndarray]], scaling: dict) -> Path:
    """Write the PNG figure to `path`."""
    width, height = 1500, 420 + 40 * max(len(distribution), 3) + 360
    img = np.full((height, width, 3), WHITE, np.uint8)
    _text(img, title, (width // 2, 22), 0.6, anchor="centre")
    top_h = 40 * max(len(distribution), 3)
    _distribution(img, (230, 80, 1060, top_h), distribution)
    y = 80 + top_h + 110
    panel_w, panel_h = 380, height - y - 70
    _scaling(img, (80, y, panel_w, panel_h), scaling.get("input_size", []), "input_size",
             [("p50_ms", "p50"), ("p99_ms", "p99")], "latency vs input size (batch 1)", "input side (px)", "ms")
    _scaling(img, (80 + panel_w + 110, y, panel_w, panel_h), scaling.get("batch", []), "batch",
             [("frames_per_s", "frames/s")], "throughput vs batch", "batch size", "frames/s")
    _scaling(img, (80 + 2 * (panel_w + 110), y, panel_w, panel_h), scaling.get("streams", []), "streams",
             [("frames_per_s", "frames/s, all streams")], "throughput vs concurrent streams", "streams (threads, own session)",
             "frames/s")
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")
    return path
