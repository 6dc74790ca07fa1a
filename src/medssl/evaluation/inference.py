"""Whole-volume inference: normalise like the cache, pad, predict slices, undo the padding."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medssl.data.preprocess import PrepareConfig, normalize_volume
from medssl.data.transforms import pad_to_multiple


def autocast_for(device: torch.device, precision: str):
    """Autocast context for ``bf16``/``16`` precision strings, a no-op for fp32."""
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


@torch.no_grad()
def predict_logits(
    model: nn.Module, slices: torch.Tensor, batch_size: int = 16, precision: str = "32-true"
) -> torch.Tensor:
    """Logits of normalised slices.

    Args:
        model: segmentation network in eval mode.
        slices: ``(S, H, W)`` normalised float slices of one volume.
        batch_size: slices per forward pass.
        precision: Lightning-style precision string (``bf16-mixed`` enables autocast).

    Returns:
        ``(S, C, H, W)`` float32 logits on the CPU, cropped back to ``H × W``.
    """
    device = next(model.parameters()).device
    padded, _, (top, left, h, w) = pad_to_multiple(slices[:, None], None)
    outs = []
    for start in range(0, padded.shape[0], batch_size):
        x = padded[start : start + batch_size].to(device)
        with autocast_for(device, precision):
            logits = model(x)
        outs.append(logits.float()[..., top : top + h, left : left + w].cpu())
    return torch.cat(outs)


def predict_volume(
    model: nn.Module,
    image: np.ndarray,
    prep: PrepareConfig,
    spacing: tuple[float, float, float] | None = None,
    batch_size: int = 16,
    precision: str = "32-true",
) -> np.ndarray:
    """Segment a raw ``(S, H, W)`` volume the way the training cache saw its volumes.

    Intensities are normalised with ``prep``; when ``prep.target_spacing`` is set the
    slices are resampled to it for the network and the logits resampled back, so the
    label map is on the input's own grid.

    Returns:
        ``(S, H, W)`` uint8 label map.
    """
    norm, _ = normalize_volume(image, prep.norm, prep.clip_percentiles)
    x = torch.from_numpy(norm)
    size = tuple(x.shape[-2:])
    if prep.target_spacing is not None and spacing is not None:
        new = (
            max(1, round(size[0] * spacing[1] / prep.target_spacing)),
            max(1, round(size[1] * spacing[2] / prep.target_spacing)),
        )
        x = F.interpolate(x[:, None], size=new, mode="bilinear", antialias=True)[:, 0]
    logits = predict_logits(model, x, batch_size, precision)
    if tuple(logits.shape[-2:]) != size:
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits.argmax(1).numpy().astype(np.uint8)
