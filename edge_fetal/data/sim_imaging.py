"""B-mode image formation for the simulator: convex-probe geometry, pulse, envelope, scan conversion.

The frame is formed in the probe's polar space (rows = depth samples along a beam, columns = beam
lines across the sector), where the physics is one-dimensional along each beam:

1. scatterers: a random field (zero-mean Gaussian amplitudes) times the tissue's scattering
   amplitude, times the two-way transmission exp(-2 * sum of attenuation above), so bone and
   other strong attenuators cast acoustic shadows and fluid gives posterior enhancement;
2. pulse: separable PSF, a lateral Gaussian (beam width) and an axial cosine-modulated Gaussian
   (the RF pulse); the quadrature kernel (sine-modulated Gaussian) gives the Hilbert transform of
   the same RF line, so the envelope is |RF + j * Hilbert(RF)| (quadrature demodulation);
3. time-gain compensation (close to, not exactly, the mean attenuation) and an electronic noise
   floor;
4. log compression over a dynamic range into 8-bit grey levels;
5. scan conversion to the Cartesian frame with `cv2.remap` (bilinear); outside the fan is black.

Grids and kernels are cached per geometry; a handful of probe presets keeps the cache warm.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

FRAME_SIZE_WH = (800, 540)
SOUND_SPEED_MM_PER_US = 1.54
_N_PRESETS = 12


@dataclass(frozen=True)
class ProbeGeometry:
    """A convex probe's sector in frame pixels: beams fan out from a virtual apex (x, y).

    The image spans radii [radius_min_px, radius_max_px] from the apex and beam angles within
    +-half_angle_deg of straight down.
    """

    width_px: int
    height_px: int
    apex_x_px: float
    apex_y_px: float
    radius_min_px: float
    radius_max_px: float
    half_angle_deg: float

    def polar(self, x, y):
        """(radius px, beam angle rad) of frame points; angle 0 points down, positive to +x."""
        dx, dy = np.asarray(x, np.float64) - self.apex_x_px, np.asarray(y, np.float64) - self.apex_y_px
        return np.hypot(dx, dy), np.arctan2(dx, dy)

    def contains(self, x, y, margin_px: float = 0.0) -> np.ndarray:
        """True where (x, y) lies inside the fan, at least `margin_px` from its edges."""
        r, theta = self.polar(x, y)
        half = math.radians(self.half_angle_deg)
        inside_r = (r >= self.radius_min_px + margin_px) & (r <= self.radius_max_px - margin_px)
        return inside_r & (np.abs(theta) * np.maximum(r, 1e-9) <= half * r - margin_px)

    def fan_mask(self) -> np.ndarray:
        """Bool [H, W]: pixels whose centres lie inside the fan (the only non-black pixels)."""
        return _grid(self).fan_mask.copy()


def probe_presets(width_px: int = FRAME_SIZE_WH[0], height_px: int = FRAME_SIZE_WH[1]) -> tuple[ProbeGeometry, ...]:
    """A fixed set of plausible sector geometries (like a scanner's probe and depth presets)."""
    rng = np.random.default_rng(20180813)
    presets = []
    for _ in range(_N_PRESETS):
        top_y = rng.uniform(-70.0, 20.0) * height_px / 540.0  # where the probe face arc peaks
        radius_min = rng.uniform(300.0, 700.0) * height_px / 540.0
        apex_y = top_y - radius_min
        radius_max = (height_px - apex_y) + rng.uniform(-50.0, 90.0) * height_px / 540.0
        presets.append(ProbeGeometry(
            width_px, height_px, float(width_px / 2 + rng.uniform(-25.0, 25.0)), float(apex_y),
            float(radius_min), float(radius_max), float(rng.uniform(22.0, 32.0)),
        ))
    return tuple(presets)


def sample_probe(
    rng: np.random.Generator, width_px: int = FRAME_SIZE_WH[0], height_px: int = FRAME_SIZE_WH[1]
) -> ProbeGeometry:
    """One of the probe presets, at random."""
    presets = probe_presets(width_px, height_px)
    return presets[int(rng.integers(len(presets)))]


@dataclass(frozen=True)
class PolarGrid:
    """Where every polar sample lies in the frame, and the scan-conversion maps back."""

    x_px: np.ndarray  # float32 [n_samples, n_lines]
    y_px: np.ndarray
    beam_sin: np.ndarray  # float32 [n_lines]: beam direction (sin, cos) of each line
    beam_cos: np.ndarray
    depth_px: np.ndarray  # float32 [n_samples]: distance from the probe face
    sample_px: float  # axial sample spacing
    line_px_mid: float  # lateral line spacing at mid depth
    map_x: np.ndarray  # float32 [H, W] line index per frame pixel (far outside the fan outside it)
    map_y: np.ndarray
    fan_mask: np.ndarray  # bool [H, W]

    @property
    def shape(self) -> tuple[int, int]:
        return self.x_px.shape


@functools.lru_cache(maxsize=2 * _N_PRESETS)
def _grid(probe: ProbeGeometry) -> PolarGrid:
    half = math.radians(probe.half_angle_deg)
    depth = probe.radius_max_px - probe.radius_min_px
    n_samples = int(round(depth * 0.85))
    r_mid = 0.5 * (probe.radius_min_px + probe.radius_max_px)
    n_lines = int(round(2.0 * half * r_mid / 2.2))
    r = np.linspace(probe.radius_min_px, probe.radius_max_px, n_samples)
    theta = np.linspace(-half, half, n_lines)
    x = probe.apex_x_px + r[:, None] * np.sin(theta)[None, :]
    y = probe.apex_y_px + r[:, None] * np.cos(theta)[None, :]

    ys, xs = np.mgrid[0 : probe.height_px, 0 : probe.width_px]
    rr, tt = probe.polar(xs, ys)
    fan = probe.contains(xs, ys)
    map_x = np.where(fan, (tt + half) / (2.0 * half) * (n_lines - 1), -100.0).astype(np.float32)
    map_y = np.where(fan, (rr - probe.radius_min_px) / depth * (n_samples - 1), -100.0).astype(np.float32)
    return PolarGrid(
        x.astype(np.float32), y.astype(np.float32),
        np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32),
        (r - probe.radius_min_px).astype(np.float32),
        depth / (n_samples - 1), 2.0 * half * r_mid / (n_lines - 1), map_x, map_y, fan,
    )


def polar_grid(probe: ProbeGeometry) -> PolarGrid:
    """The cached polar sampling grid and scan-conversion maps of `probe`."""
    return _grid(probe)


def scan_convert(polar_u8: np.ndarray, grid: PolarGrid) -> np.ndarray:
    """Polar uint8 image -> Cartesian frame [H, W] (bilinear; black outside the fan)."""
    return cv2.remap(polar_u8, grid.map_x, grid.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# --- pulse and envelope -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pulse:
    """Transmit pulse and beam: centre frequency, axial envelope and lateral beam width in mm."""

    frequency_mhz: float
    axial_sigma_mm: float
    lateral_sigma_mm: float

    @property
    def wavelength_mm(self) -> float:
        return SOUND_SPEED_MM_PER_US / self.frequency_mhz


def pulse_for_depth(depth_mm: float, rng: np.random.Generator) -> Pulse:
    """A plausible abdominal probe setting: lower frequency for deeper scans (2-6 MHz)."""
    f = float(np.clip(6.5 - depth_mm / 35.0 + rng.uniform(-0.5, 0.5), 2.0, 6.0))
    wavelength = SOUND_SPEED_MM_PER_US / f
    return Pulse(f, axial_sigma_mm=0.55 * wavelength * rng.uniform(0.9, 1.2),
                 lateral_sigma_mm=1.6 * wavelength * rng.uniform(0.85, 1.25))


@functools.lru_cache(maxsize=256)
def psf_kernels(wavelength_samples: float, axial_sigma_samples: float, lateral_sigma_lines: float):
    """(lateral Gaussian [1, k], axial cosine kernel [k, 1], axial sine kernel [k, 1]), float32.

    Each kernel has unit energy, so unit-variance white scatterers give unit-variance I and Q.
    """
    half = int(math.ceil(3.0 * lateral_sigma_lines))
    xl = np.arange(-half, half + 1, dtype=np.float64)
    lateral = np.exp(-0.5 * (xl / lateral_sigma_lines) ** 2)
    half = int(math.ceil(3.0 * axial_sigma_samples))
    za = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (za / axial_sigma_samples) ** 2)
    phase = 2.0 * math.pi * za / wavelength_samples
    cos_k, sin_k = gauss * np.cos(phase), gauss * np.sin(phase)
    norm = lambda k: (k / math.sqrt(float((k * k).sum()))).astype(np.float32)  # noqa: E731
    return norm(lateral)[None, :], norm(cos_k)[:, None], norm(sin_k)[:, None]


@dataclass(frozen=True)
class Imaging:
    """Per-scene imaging settings, in polar samples where it matters."""

    wavelength_samples: float
    axial_sigma_samples: float
    lateral_sigma_lines: float
    sample_mm: float  # axial sample spacing
    tissue_attenuation_np_per_mm: float  # soft tissue at this frequency, one way
    tgc_fraction: float  # share of the soft-tissue attenuation the TGC gives back
    tissue_grey: float  # grey level of 0 dB (soft tissue)
    dynamic_range_db: float
    noise_floor: float  # echo amplitude of electronic noise before the TGC, soft tissue = 1
    smoothing: float  # speckle reduction kernel, in resolution cells
    grey_gamma: float  # display grey map exponent


def imaging_for(pulse: Pulse, grid: PolarGrid, mm_per_px: float, rng: np.random.Generator) -> Imaging:
    """Convert a pulse from mm to this grid's samples (kept resolvable) and draw display settings."""
    sample_mm = grid.sample_px * mm_per_px
    line_mm = grid.line_px_mid * mm_per_px
    wavelength = max(pulse.wavelength_mm / sample_mm, 3.2)
    axial = max(pulse.axial_sigma_mm / sample_mm, 0.9, 0.45 * wavelength)
    lateral = max(pulse.lateral_sigma_mm / line_mm, 0.8)
    return Imaging(
        wavelength, axial, lateral, sample_mm,
        tissue_attenuation_np_per_mm=0.05 * pulse.frequency_mhz / 8.686,  # 0.5 dB/cm/MHz
        tgc_fraction=float(rng.uniform(0.85, 1.05)),
        tissue_grey=float(rng.uniform(88.0, 102.0)),
        dynamic_range_db=float(rng.uniform(47.0, 54.0)),
        noise_floor=float(rng.uniform(0.01, 0.03)),
        smoothing=float(rng.uniform(0.8, 1.0)),
        grey_gamma=float(rng.uniform(1.4, 1.6)),
    )


def form_bmode(amplitude: np.ndarray, attenuation: np.ndarray, scatterers: np.ndarray, imaging: Imaging) -> np.ndarray:
    """Polar uint8 B-mode from per-sample scattering amplitude, attenuation and scatterer field.

    amplitude: float32 [n_samples, n_lines], RMS scattering (soft tissue = 1);
    attenuation: float32, one-way attenuation in nepers per mm (bone >> soft tissue > fluid);
    scatterers: float32 unit-variance random field of the same shape.
    """
    path = np.cumsum(attenuation, axis=0, dtype=np.float32)
    path *= -2.0 * imaging.sample_mm
    echo = amplitude * np.exp(path)
    echo += imaging.noise_floor  # electronic noise enters after the tissue, before the TGC
    tgc_rate = 2.0 * imaging.tissue_attenuation_np_per_mm * imaging.sample_mm * imaging.tgc_fraction
    echo *= np.exp(np.arange(amplitude.shape[0], dtype=np.float32) * np.float32(tgc_rate))[:, None]
    scat = echo * scatterers
    lateral, axial_cos, axial_sin = psf_kernels(
        round(imaging.wavelength_samples, 2),
        round(imaging.axial_sigma_samples, 2),
        round(imaging.lateral_sigma_lines, 2),
    )
    one = np.ones((1, 1), np.float32)
    beam = cv2.sepFilter2D(scat, cv2.CV_32F, lateral, one, borderType=cv2.BORDER_REFLECT)
    rf = cv2.sepFilter2D(beam, cv2.CV_32F, one, axial_cos, borderType=cv2.BORDER_REFLECT)
    quad = cv2.sepFilter2D(beam, cv2.CV_32F, one, axial_sin, borderType=cv2.BORDER_REFLECT)
    # |analytic signal|^2; then the scanner's speckle reduction (incoherent averaging of the
    # intensity over about one resolution cell, as spatial compounding does)
    intensity = cv2.magnitude(rf, quad)
    cv2.multiply(intensity, intensity, dst=intensity)
    intensity = cv2.GaussianBlur(intensity, (0, 0), sigmaX=imaging.smoothing * imaging.lateral_sigma_lines,
                                 sigmaY=imaging.smoothing * imaging.axial_sigma_samples)
    # grey = tissue_grey + 255 / DR * 10 log10(intensity / 2); cv2.log is the natural log
    scale = 255.0 / imaging.dynamic_range_db * 10.0 / math.log(10.0)
    grey = cv2.log(intensity)
    grey = grey * scale + (imaging.tissue_grey - scale * math.log(2.0))
    grey = np.clip(grey, 0.0, 255.0, out=grey).astype(np.uint8)
    return cv2.LUT(grey, _grey_map(round(imaging.grey_gamma, 2)))


@functools.lru_cache(maxsize=64)
def _grey_map(gamma: float) -> np.ndarray:
    """The display's grey map: a power curve that darkens the low end (fluid, brain)."""
    return np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)


def add_scanner_overlay(image: np.ndarray, rng: np.random.Generator, keep_clear: np.ndarray | None = None) -> None:
    """Draw HC18-like screen furniture in place: grey-scale bar, black corner box, a small mark.

    Nothing is drawn over `keep_clear` (bool [H, W], e.g. the target's mask grown by a margin).
    """
    h, w = image.shape
    clear = np.zeros((h, w), bool) if keep_clear is None else cv2.dilate(
        keep_clear.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool)

    def put(y0: int, y1: int, x0: int, x1: int, value) -> None:
        if not clear[y0:y1, x0:x1].any():
            image[y0:y1, x0:x1] = value

    scale = h / 540.0
    if rng.random() < 0.9:  # grey-scale bar at the left edge, white at the top
        y0, y1 = int(24 * scale), int(185 * scale)
        ramp = 243.0 * (1.0 - np.linspace(0.0, 1.0, y1 - y0)) ** 1.4
        put(y0, y1, 3, 3 + int(rng.integers(5, 9)), ramp.astype(np.uint8)[:, None])
    if rng.random() < 0.8:  # black annotation box in the bottom-right corner
        bw, bh = int(rng.uniform(60, 280) * scale), int(rng.uniform(60, 170) * scale)
        put(h - bh, h, w - bw, w, 0)
    if rng.random() < 0.5:  # a small orientation mark near the top-left corner of the fan
        x, y = int(rng.uniform(12, 40) * scale), int(rng.uniform(8, 30) * scale)
        put(y, y + int(6 * scale), x, x + int(10 * scale), int(rng.integers(150, 240)))
