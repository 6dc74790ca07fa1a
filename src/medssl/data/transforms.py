"""Slice transforms on tensors, with explicit random generators.

Training crops are random resized crops (the Inception/BYOL recipe), resampled with
antialiased bilinear interpolation for images and nearest neighbour for labels.

Two brightness/contrast jitters, chosen by :attr:`AugmentConfig.jitter_style`:

- ``albumentations`` (the study's, ``paper`` presets): albumentations'
  ``RandomBrightnessContrast`` as the original code calls it, on the view scaled to
  ``[0, 1]`` by its own minimum and maximum: ``x ← lo + α·(x − lo) + β·(hi − lo)``,
  clipped to ``[lo, hi]``, with ``α ∈ 1 ± contrast`` and ``β ∈ ±brightness``. (The
  original applies it to raw ``uint16`` intensities, where ``brightness_by_max`` makes
  the shift ``β·65535`` and saturates the slice; see ``docs/paper-protocol.md``.)
- ``std`` (medssl's earlier recipe): brightness adds ``δ·std`` and contrast scales
  around the mean, meaningful for z-scored and min-max data alike.

No hue, saturation, grayscale or solarisation: the data is single-channel MRI (they
are no-ops or absent in the original's ACDC pipeline too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of one view.

    Attributes:
        mode: ``area``: random resized crop whose area is a fraction ``scale`` of the
            slice (BYOL views); ``zoom``: a window of ``size / z`` pixels at native
            resolution, ``z`` drawn from ``zoom`` (segmentation: training sees anatomy
            at the scale of the whole-slice evaluation).
        zoom: range of the zoom factor in ``zoom`` mode.
        size: output side in pixels.
        scale: range of the crop's area as a fraction of the slice.
        ratio: range of the crop's aspect ratio.
        flip_p: probability of a horizontal flip.
        jitter_p: probability of applying brightness/contrast jitter.
        brightness: maximum brightness change (``albumentations``: a fraction of the
            view's intensity range; ``std``: in units of the view's std).
        contrast: maximum relative change of contrast.
        jitter_style: ``albumentations`` (the study's) or ``std`` (see the module doc).

    The defaults are the study's views (the original's ``AlbuTransforms`` and
    fine-tuning ``train_aug``): crop scale 0.08–1, flip 0.5, brightness and contrast
    0.2 with probability 0.2.
    """

    mode: Literal["area", "zoom"] = "area"
    zoom: tuple[float, float] = (0.8, 1.25)
    size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.2
    brightness: float = 0.2
    contrast: float = 0.2
    jitter_style: Literal["albumentations", "std"] = "albumentations"


#: ``ViewParams.jitter[0]`` codes: not applied, ``std`` style, ``albumentations`` style.
JITTER_CODES = {"std": 1.0, "albumentations": 2.0}


def byol_view_config(size: int = 224) -> AugmentConfig:
    """The study's BYOL views (``self_supervised/byol-acdc.sh`` + ``AlbuTransforms``):
    crop scale 0.08–1, brightness/contrast 0.2 with p 0.2, flip 0.5."""
    return AugmentConfig(size=size)


def segmentation_config(size: int = 224) -> AugmentConfig:
    """The study's fine-tuning augmentation (``supervised_segmentation/train.py``):
    ``RandomResizedCrop(224, 224)`` (scale 0.08–1), flip 0.5,
    ``RandomBrightnessContrast(p=0.2)`` (limits 0.2)."""
    return AugmentConfig(size=size)


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def sample_crop(
    h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float], gen: torch.Generator
) -> tuple[int, int, int, int]:
    """Sample a random resized crop box ``(top, left, height, width)`` inside ``h × w``.

    Same algorithm as torchvision's ``RandomResizedCrop.get_params`` (10 tries, then a
    centre crop of the clamped ratio), but driven by an explicit generator.
    """
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(gen, *scale)
        aspect = math.exp(_uniform(gen, *log_ratio))
        cw = round(math.sqrt(target * aspect))
        ch = round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (), generator=gen))
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def jitter(image: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness/contrast jitter of a ``(1, H, W)`` slice with probability ``cfg.jitter_p``."""
    if float(torch.rand((), generator=gen)) >= cfg.jitter_p:
        return image
    shift = _uniform(gen, -cfg.brightness, cfg.brightness)
    factor = _uniform(gen, 1 - cfg.contrast, 1 + cfg.contrast)
    return apply_jitter(image, JITTER_CODES[cfg.jitter_style], shift, factor)


def apply_jitter(image: torch.Tensor, code: float, shift: float, factor: float) -> torch.Tensor:
    """Brightness ``shift`` and contrast ``factor`` on one view (``code`` from
    :data:`JITTER_CODES`; 0 leaves the view unchanged)."""
    if code == JITTER_CODES["albumentations"]:
        lo, hi = image.min(), image.max()
        out = lo + factor * (image - lo) + shift * (hi - lo)
        return torch.minimum(torch.maximum(out, lo), hi)
    if code == JITTER_CODES["std"]:
        mean, std = image.mean(), image.std().clamp_min(1e-6)
        return (image - mean) * factor + mean + shift * std
    return image


def _zoom_window(cfg: AugmentConfig, gen: torch.Generator) -> int:
    """Window side for ``zoom`` mode; draws the zoom once per call from ``gen``."""
    return max(1, round(cfg.size / _uniform(gen, *cfg.zoom)))


def sample_window(h: int, w: int, side: int, gen: torch.Generator) -> tuple[int, int, int, int]:
    """A uniformly placed ``side × side`` window inside ``h × w`` (``side`` ≤ both)."""
    top = int(torch.randint(0, h - side + 1, (), generator=gen))
    left = int(torch.randint(0, w - side + 1, (), generator=gen))
    return top, left, side, side


def _pad_to_at_least(
    image: torch.Tensor, label: torch.Tensor | None, side: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Centre-pad a slice smaller than ``side`` (image with its minimum, label with 0)."""
    h, w = image.shape[-2:]
    ph, pw = max(0, side - h), max(0, side - w)
    if not ph and not pw:
        return image, label
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    out = F.pad(image, pad, value=float(image.min()))
    return out, None if label is None else F.pad(label, pad, value=0)


@dataclass(frozen=True)
class ViewParams:
    """The random draws of one augmented view, in the slice's own pixel coordinates.

    ``box`` = ``(top, left, height, width)`` may extend past the slice (``zoom`` mode
    on slices smaller than the window: the outside reads as the slice's minimum).
    ``jitter`` = ``(code, brightness_draw, contrast_factor)``, ``code`` 0 when no jitter
    is applied, else the style's :data:`JITTER_CODES` value (see :func:`apply_jitter`).
    """

    box: tuple[int, int, int, int]
    flip: bool
    jitter: tuple[float, float, float]

    def as_row(self) -> list[float]:
        """``[top, left, h, w, flip, applied, shift, factor]`` (one row of a batch table)."""
        return [*map(float, self.box), float(self.flip), *self.jitter]


def sample_view(h: int, w: int, cfg: AugmentConfig, gen: torch.Generator) -> ViewParams:
    """Draw the crop, flip and jitter of one view of an ``h × w`` slice from ``gen``.

    The per-sample path (:func:`augment`) and the batched on-device path
    (:mod:`medssl.data.batch_augment`) both use these draws, so they see the same
    crops for the same ``(seed, epoch, index)``.
    """
    if cfg.mode == "zoom":
        side = _zoom_window(cfg, gen)
        ph, pw = max(0, side - h), max(0, side - w)
        top, left, ch, cw = sample_window(h + ph, w + pw, side, gen)
        box = (top - ph // 2, left - pw // 2, ch, cw)
    else:
        box = sample_crop(h, w, cfg.scale, cfg.ratio, gen)
    flip = float(torch.rand((), generator=gen)) < cfg.flip_p
    if float(torch.rand((), generator=gen)) >= cfg.jitter_p:
        return ViewParams(box, flip, (0.0, 0.0, 1.0))
    shift = _uniform(gen, -cfg.brightness, cfg.brightness)
    factor = _uniform(gen, 1 - cfg.contrast, 1 + cfg.contrast)
    return ViewParams(box, flip, (JITTER_CODES[cfg.jitter_style], shift, factor))


def apply_view(
    image: torch.Tensor, label: torch.Tensor | None, params: ViewParams, size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample one ``(1, H, W)`` slice (and ``(H, W)`` label) as ``params`` says:
    antialiased bilinear crop-resize, nearest for labels, flip, then jitter."""
    top, left, ch, cw = params.box
    h, w = image.shape[-2:]
    if top < 0 or left < 0 or top + ch > h or left + cw > w:
        image, label = _pad_to_at_least(image, label, max(ch, cw))
        top += (image.shape[-2] - h) // 2
        left += (image.shape[-1] - w) // 2
    out = TF.resized_crop(
        image, top, left, ch, cw, [size, size], InterpolationMode.BILINEAR, antialias=True
    )
    out_label = None
    if label is not None:
        out_label = TF.resized_crop(
            label[None], top, left, ch, cw, [size, size], InterpolationMode.NEAREST_EXACT
        )[0].long()
    if params.flip:
        out = out.flip(-1)
        out_label = None if out_label is None else out_label.flip(-1)
    code, shift, factor = params.jitter
    return apply_jitter(out, code, shift, factor), out_label


def augment(
    image: torch.Tensor, label: torch.Tensor | None, cfg: AugmentConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random resized crop, flip and jitter of a slice (and its label).

    Args:
        image: ``(1, H, W)`` float32.
        label: ``(H, W)`` integer label or ``None``.
        cfg: augmentation settings.
        gen: random generator (the only source of randomness).

    Returns:
        ``(1, size, size)`` image and ``(size, size)`` int64 label (or ``None``).
    """
    params = sample_view(*image.shape[-2:], cfg, gen)
    return apply_view(image, label, params, cfg.size)


def pad_to_multiple(
    image: torch.Tensor, label: torch.Tensor | None, multiple: int = 32
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, int, int, int]]:
    """Centre-pad ``(..., H, W)`` to a multiple of ``multiple`` (deterministic evaluation).

    The image is padded with its minimum, the label with background (0). Returns the
    padded tensors and the valid box ``(top, left, H, W)`` for cropping predictions back.
    """
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    top, left = ph // 2, pw // 2
    pad = (left, pw - left, top, ph - top)
    out = F.pad(image, pad, value=float(image.min()))
    out_label = None if label is None else F.pad(label, pad, value=0)
    return out, out_label, (top, left, h, w)


def sample_generator(seed: int, epoch: int, index: int, draw: int = 0) -> torch.Generator:
    """A generator seeded from ``(seed, epoch, index, draw)``: augmentation of a sample is
    reproducible whatever the worker count, order or resume point. ``draw`` numbers the
    repeats of ``index`` within an epoch (oversampled small budgets); draw 0 keeps the
    seeds of single-pass epochs."""
    mixed = (seed * 1_000_003 + epoch) * 2_147_483_647 + index + draw * 0x9E3779B97F4A7C15
    return torch.Generator().manual_seed(mixed % (2**63 - 1))
