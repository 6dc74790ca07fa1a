"""Image formation of the phantom: tissue intensities, compositing, textures, PSF, noise.

Intensities are relative (blood near 1) until scaled by :attr:`Appearance.scale`.
Materials are composited with partial-volume occupancies on a :class:`Canvas` that
also tracks the fat fraction, for the dark bSSFP line at fat-water boundaries; then a
Gaussian point-spread function, off-resonance bands and Rician noise are applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Standard deviation (voxels) of the in-plane blur of the rendered intensities.
PSF_SIGMA_PX = 0.6


@dataclass(frozen=True)
class Appearance:
    """Relative tissue intensities (bSSFP-like: blood bright, myocardium dark) and scan settings.

    Attributes:
        blood, myocardium, fat, muscle, tissue, liver, lung: relative intensities.
        texture: relative amplitude of tissue texture.
        scale: stored intensity of relative intensity 1.
        noise: Rician noise standard deviation, relative to intensity 1.
        bias: coefficients of the log bias field ``(x, y, x², y², xy)`` over the FOV.
        banding_mm: distance from the heart of the first dark bSSFP off-resonance band.
        banding_stretch: anisotropy ``(x, y)`` of the off-resonance field.
    """

    blood: float
    myocardium: float
    fat: float
    muscle: float
    tissue: float
    liver: float
    lung: float
    texture: float
    scale: float
    noise: float
    bias: tuple[float, float, float, float, float]
    banding_mm: float = 160.0
    banding_stretch: tuple[float, float] = (1.0, 1.0)


@dataclass
class Canvas:
    """Intensity and fat fraction under composition (a local, short-lived buffer)."""

    image: np.ndarray
    fat: np.ndarray

    def paint(self, alpha: np.ndarray, value: np.ndarray | float, fat: float = 0.0) -> None:
        """Composite a material of intensity ``value`` and fat fraction ``fat``."""
        self.image = paint(self.image, alpha, value)
        self.fat = paint(self.fat, alpha, fat)

    def paint_at(
        self, index: tuple[slice, ...], alpha: np.ndarray, value: np.ndarray | float, fat: float
    ) -> None:
        """:meth:`paint` restricted to ``image[index]``."""
        self.image[index] = paint(self.image[index], alpha, value)
        self.fat[index] = paint(self.fat[index], alpha, fat)

    def inked(self, strength: float = 0.7) -> np.ndarray:
        """Image with the dark bSSFP line where fat meets water (fat fraction near 0.5)."""
        return (self.image * (1.0 - strength * 4.0 * self.fat * (1.0 - self.fat))).astype(
            np.float32
        )


def paint(image: np.ndarray, alpha: np.ndarray, value: np.ndarray | float) -> np.ndarray:
    """Composite ``value`` over ``image`` with occupancy ``alpha`` in ``[0, 1]``."""
    return image + alpha * (value - image)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """In-plane low-pass Gaussian noise of unit standard deviation, ``(Z, H, W)`` float32.

    Wide kernels are applied on a grid coarser by ``sigma_px / 2`` and interpolated back.
    """
    from scipy.ndimage import gaussian_filter

    factor = max(int(sigma_px / 3.0), 1)
    pad = 0 if factor == 1 else 2
    coarse = (shape[0], shape[1] // factor + pad, shape[2] // factor + pad)
    sigma = sigma_px / factor
    field = gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), (0, sigma, sigma))
    if factor > 1:
        field = _upsample(_upsample(field, 1, shape[1], factor), 2, shape[2], factor)
    return field / max(float(field.std()), 1e-6)


def _upsample(field: np.ndarray, axis: int, size: int, factor: int) -> np.ndarray:
    """Linear interpolation along ``axis`` from a grid ``factor`` times coarser."""
    position = np.arange(size) / factor
    low = np.floor(position).astype(np.int64)
    shape = [1] * field.ndim
    shape[axis] = size
    frac = (position - low).astype(np.float32).reshape(shape)
    below, above = np.take(field, low, axis=axis), np.take(field, low + 1, axis=axis)
    return below + frac * (above - below)


def banding(dx: np.ndarray, dy: np.ndarray, look: Appearance) -> np.ndarray:
    """Dark bSSFP off-resonance bands, far from the shimmed heart, as an intensity factor.

    The off-resonance (in cycles) grows as ``(d / banding_mm)⁴`` with the (stretched)
    distance ``d`` from the heart; signal drops where it crosses half-integers.
    """
    sx, sy = look.banding_stretch
    u, v = dx * sx / look.banding_mm, dy * sy / look.banding_mm
    radial = 0.5 * (u * u + v * v) ** 2
    cycles = radial + 0.25 * u * v + 0.15 * (u**3 - v**2 * u)
    offset = np.abs((cycles % 1.0) - 0.5)
    dip = 0.7 * np.exp(-0.5 * (offset / 0.035) ** 2) * np.clip((radial - 0.3) / 0.3, 0.0, 1.0)
    return (1.0 - dip).astype(np.float32)


def blur(image: np.ndarray) -> np.ndarray:
    """In-plane Gaussian point-spread function of ``PSF_SIGMA_PX`` voxels, float32."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image.astype(np.float32), (0, PSF_SIGMA_PX, PSF_SIGMA_PX))


def rician_int16(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise, rounded to int16.

    The noise ``(n1, n2) = ρ (cos φ, sin φ)`` is drawn by Box–Muller from the 32-bit
    halves of the generator's raw output (several times faster than two normal draws),
    and ``|s + n1 + i n2|² = s² + ρ (ρ + 2 s cos φ)``.

    Args:
        signal: noise-free magnitude, any shape, float32.
        sigma: standard deviation of each noise component.
        rng: noise generator.
    """
    raw = rng.bit_generator.random_raw(signal.size).view(np.uint32).reshape(-1, 2)
    uniform = (raw.astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-32)
    radius = np.float32(sigma) * np.sqrt(np.float32(-2.0) * np.log(uniform[:, 0]))
    cos_phase = np.cos(np.float32(2.0 * math.pi) * uniform[:, 1])
    flat = signal.reshape(-1)
    power = flat * flat + radius * (radius + 2.0 * flat * cos_phase)
    magnitude = np.rint(np.sqrt(np.maximum(power, 0.0)))
    limit = np.iinfo(np.int16).max
    return np.minimum(magnitude, limit).astype(np.int16).reshape(signal.shape)
