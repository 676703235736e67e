"""Ultrasound-realistic augmentations of a uint8 frame and its label mask (numpy / OpenCV).

Geometry (one affine warp; image bilinear, mask nearest so labels stay exact, border 0):
depth change (zoom about the probe's top centre), rotation about the centre, left-right flip,
small translation. Intensity (after the warp, in the frame's own coordinates): acoustic shadow
(a dark wedge from the probe or a vertical band below an occluder), speckle (multiplicative,
Rayleigh-distributed, slightly correlated), gain + gamma (the operator's gain/contrast knobs).
The plane label never changes: the ranges are small enough to keep the structure in view.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge_fetal.train.config import AugmentConfig


class Augmenter:
    """`augmenter(image, label, rng) -> (image, label)`.

    image: uint8 [H,W] B-mode frame; label: uint8 [H,W] class ids (0 background); rng: a numpy
    Generator (the caller owns the seeding). Returns new arrays of the same shape and dtype; the
    output labels are a subset of the input labels plus 0 (background enters at the borders).
    """

    def __init__(self, cfg: AugmentConfig = AugmentConfig()):
        self.cfg = cfg

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        if image.dtype != np.uint8 or label.dtype != np.uint8 or image.shape != label.shape:
            raise ValueError(f"need uint8 image and label of one shape, got {image.dtype}{image.shape}, "
                             f"{label.dtype}{label.shape}")
        matrix = self._geometry(image.shape, rng)
        if matrix is not None:
            size = (image.shape[1], image.shape[0])
            image = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
            label = cv2.warpAffine(label, matrix, size, flags=cv2.INTER_NEAREST, borderValue=0)
        else:
            label = label.copy()
        pixels = image.astype(np.float32) / 255.0
        c = self.cfg
        if rng.random() < c.p_shadow:
            pixels *= self._shadow(pixels.shape, rng)
        if rng.random() < c.p_speckle:
            pixels *= self._speckle(pixels.shape, rng)
        if rng.random() < c.p_gamma:
            gamma = rng.uniform(*c.gamma_range)
            gain = rng.uniform(*c.gain_range)
            pixels = gain * np.power(np.clip(pixels, 0.0, 1.0), gamma)
        image = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return image, label

    def _geometry(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray | None:
        """A 2x3 affine (output → input convention of warpAffine: maps source to destination)."""
        c = self.cfg
        h, w = shape
        cx, cy = (w - 1) / 2, (h - 1) / 2
        m = np.eye(3)
        if rng.random() < c.p_depth:  # zoom about the probe (top centre): changes the depth shown
            s = rng.uniform(*c.zoom_range)
            m = np.array([[s, 0, cx * (1 - s)], [0, s, 0], [0, 0, 1]]) @ m
        if rng.random() < c.p_rotate:
            angle = rng.uniform(-c.max_rotation_deg, c.max_rotation_deg)
            m = np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, 1.0), [0, 0, 1]]) @ m
        if rng.random() < c.p_flip:
            m = np.array([[-1, 0, w - 1], [0, 1, 0], [0, 0, 1]]) @ m
        if rng.random() < c.p_translate:
            tx, ty = rng.uniform(-c.max_translate_frac, c.max_translate_frac, size=2) * (w, h)
            m = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]]) @ m
        if np.allclose(m, np.eye(3)):
            return None
        return m[:2].astype(np.float64)

    def _shadow(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Multiplicative map: 1 outside, `attenuation` inside a soft-edged shadow below depth y0."""
        h, w = shape
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        soft = 0.03 * w
        if rng.random() < 0.5:  # wedge fanning out from a virtual apex above the frame
            apex_x, apex_y = w / 2, -0.25 * h
            angle = np.arctan2(xs - apex_x, ys - apex_y)
            centre = rng.uniform(-0.5, 0.5)
            half = rng.uniform(0.05, 0.2)
            inside = np.clip((half - np.abs(angle - centre)) * (ys - apex_y) / soft, 0, 1)
        else:  # vertical band (behind a bone or a rib)
            centre = rng.uniform(0.1, 0.9) * w
            half = rng.uniform(0.04, 0.15) * w
            inside = np.clip((half - np.abs(xs - centre)) / soft, 0, 1)
        onset = rng.uniform(0.1, 0.6) * h
        inside *= np.clip((ys - onset) / soft, 0, 1)
        attenuation = rng.uniform(*self.cfg.shadow_attenuation)
        return 1.0 - inside * (1.0 - attenuation)

    def _speckle(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Mean-1 multiplicative noise: Rayleigh amplitude, blurred to a ~2 px correlation."""
        noise = rng.rayleigh(1.0, size=shape).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), 0.8)
        noise /= noise.mean()
        strength = rng.uniform(*self.cfg.speckle_strength)
        return 1.0 + strength * (noise - 1.0)
