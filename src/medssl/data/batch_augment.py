"""Batched augmentation on the training device, from slices held in memory.

The per-sample path (DataLoader workers running :func:`medssl.data.transforms.augment`)
spends CPU time per slice and competes with the model for cores. Here the slices a
run trains on are packed once into a :class:`SliceBank` (on the GPU when it fits),
the random draws come from the same :func:`~medssl.data.transforms.sample_view` as the
per-sample path (same ``(seed, epoch, index)`` keys, so runs stay resumable and
reproducible), and one call resamples a whole batch with tensor ops:

- crops are two batched matrix products with antialiased bilinear weights (the
  triangle filter of PIL and torchvision's ``antialias=True``, stretched by each
  sample's downscale factor), so they match the per-sample path to float rounding;
- labels are nearest-neighbour at the output pixel centres, which is exactly
  torchvision's ``NEAREST_EXACT`` on the crop;
- flips reverse the sample columns; jitter is the per-sample formula of
  :func:`medssl.data.transforms.apply_jitter` (``std`` or ``albumentations`` style).

Pixels outside a slice (zoom windows larger than the slice) read as the slice's
minimum and label 0, as the per-sample path pads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medssl.data.cache_read import SliceCache
from medssl.data.transforms import JITTER_CODES


@dataclass(frozen=True)
class SliceBank:
    """Slices packed end to end in one flat tensor (no padding to a common size).

    Attributes:
        images: ``(P,)`` normalised intensities in the cache's dtype.
        labels: ``(P,)`` uint8 labels, or ``None``.
        offsets, heights, widths: ``(N,)`` int64 position and size of slice ``n``.
        mins: ``(N,)`` float32 minimum of each slice (the padding value).
        max_height, max_width: the largest slice sides, kept on the host so that a
            batch on the GPU is resampled without a host synchronisation.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    offsets: torch.Tensor
    heights: torch.Tensor
    widths: torch.Tensor
    mins: torch.Tensor
    max_height: int
    max_width: int

    @classmethod
    def from_cache(cls, cache: SliceCache, indices, with_labels: bool = False) -> SliceBank:
        """Copy the slices ``indices`` of ``cache`` into memory, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        heights = cache.index["height"][idx].astype(np.int64)
        widths = cache.index["width"][idx].astype(np.int64)
        sizes = heights * widths
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        images = np.empty(int(sizes.sum()), dtype=cache.images.dtype)
        labels = np.empty(int(sizes.sum()), dtype=np.uint8) if with_labels else None
        mins = np.empty(len(idx), dtype=np.float32)
        for n, i in enumerate(idx):
            src = int(cache.index["img_offset"][i])
            part = images[offsets[n] : offsets[n] + sizes[n]]
            part[:] = cache.images[src : src + sizes[n]]
            mins[n] = float(part.min())
            if labels is not None:
                lab = int(cache.index["lab_offset"][i])
                if lab < 0:
                    raise ValueError(f"slice {i} of {cache.path} is unlabelled")
                labels[offsets[n] : offsets[n] + sizes[n]] = cache.labels[lab : lab + sizes[n]]
        return cls(
            torch.from_numpy(images),
            None if labels is None else torch.from_numpy(labels),
            torch.from_numpy(offsets),
            torch.from_numpy(heights),
            torch.from_numpy(widths),
            torch.from_numpy(mins),
            int(heights.max(initial=0)),
            int(widths.max(initial=0)),
        )

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def nbytes(self) -> int:
        tensors = [self.images, self.offsets, self.heights, self.widths, self.mins]
        tensors += [] if self.labels is None else [self.labels]
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> SliceBank:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return SliceBank(
            move(self.images),
            move(self.labels),
            move(self.offsets),
            move(self.heights),
            move(self.widths),
            move(self.mins),
            self.max_height,
            self.max_width,
        )


def bank_device(bank: SliceBank, device: torch.device, max_fraction: float = 0.3) -> torch.device:
    """``device`` when the bank fits in ``max_fraction`` of its free memory, else the CPU."""
    if device.type != "cuda":
        return device
    free, _total = torch.cuda.mem_get_info(device)
    return device if bank.nbytes <= max_fraction * free else torch.device("cpu")


def _centres(start: torch.Tensor, length: torch.Tensor, size: int) -> torch.Tensor:
    """Source coordinates (pixel-centre convention) of the ``size`` output pixel
    centres spread over ``[start, start + length)`` per batch row: ``(B, size)``."""
    pos = torch.arange(size, device=start.device, dtype=torch.float32) + 0.5
    return start[:, None] + pos[None, :] * (length[:, None] / size) - 0.5


def _gather(
    flat: torch.Tensor,
    bank: SliceBank,
    rows: torch.Tensor,
    ys: torch.Tensor,
    xs: torch.Tensor,
    fill: torch.Tensor,
) -> torch.Tensor:
    """Values at integer ``(ys[b, i], xs[b, j])`` of slice ``rows[b]``; ``fill[b]`` outside."""
    h, w = bank.heights[rows][:, None], bank.widths[rows][:, None]
    vy, vx = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
    yc = torch.minimum(ys.clamp_min(0), h - 1)
    xc = torch.minimum(xs.clamp_min(0), w - 1)
    idx = bank.offsets[rows][:, None, None] + yc[:, :, None] * w[:, :, None] + xc[:, None, :]
    values = flat[idx]
    valid = vy[:, :, None] & vx[:, None, :]
    return torch.where(valid, values.to(fill.dtype), fill[:, None, None])


def resize_weights(
    start: torch.Tensor, length: torch.Tensor, size: int, extent: int
) -> torch.Tensor:
    """Antialiased bilinear resampling matrices ``(B, size, extent)``.

    Row ``i`` of batch row ``b`` holds the weights of source pixels ``0 … extent−1``
    for output pixel ``i`` of the crop ``[start, start + length)``: a triangle filter
    stretched by the downscale factor and normalised over the crop (PIL's and
    torchvision's ``antialias=True``). Crop pixels outside ``[0, extent)`` keep their
    share of the normalisation; they multiply zeros (see :func:`augment_batch`).
    """
    scale = (length / size)[:, None, None]
    support = scale.clamp_min(1.0)
    centre = start[:, None, None] + scale * (
        torch.arange(size, device=start.device, dtype=torch.float32)[None, :, None] + 0.5
    )
    lo = int(min(0, float(start.min())))
    hi = int(max(extent, float((start + length).max())))
    src = torch.arange(lo, hi, device=start.device, dtype=torch.float32)[None, None, :]
    weights = (1 - ((src + 0.5 - centre) / support).abs()).clamp_min(0)
    inside = (src >= start[:, None, None]) & (src < (start + length)[:, None, None])
    weights = weights * inside
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    return weights[..., -lo : -lo + extent]


def _jitter_batch(
    image: torch.Tensor, code: torch.Tensor, shift: torch.Tensor, factor: torch.Tensor
) -> torch.Tensor:
    """Per-sample brightness/contrast of ``(B, H, W)`` views, as
    :func:`medssl.data.transforms.apply_jitter` (``code`` selects the style)."""
    shift, factor = shift[:, None, None], factor[:, None, None]
    mean = image.mean((1, 2), keepdim=True)
    std = image.std((1, 2), keepdim=True).clamp_min(1e-6)
    by_std = (image - mean) * factor + mean + shift * std
    lo = image.amin((1, 2), keepdim=True)
    hi = image.amax((1, 2), keepdim=True)
    by_range = torch.minimum(torch.maximum(lo + factor * (image - lo) + shift * (hi - lo), lo), hi)
    code = code[:, None, None]
    out = torch.where(code == JITTER_CODES["std"], by_std, image)
    return torch.where(code == JITTER_CODES["albumentations"], by_range, out)


def augment_batch(
    bank: SliceBank, rows: torch.Tensor, views: torch.Tensor, size: int, with_labels: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample a batch of views in one go.

    Args:
        bank: the slices (on the device where the work should happen).
        rows: ``(B,)`` int64 positions in ``bank``.
        views: ``(B, 8)`` rows of :meth:`~medssl.data.transforms.ViewParams.as_row`.
        size: output side.
        with_labels: also resample the labels (nearest).

    Returns:
        ``(B, 1, size, size)`` float32 images and ``(B, size, size)`` int64 labels
        (or ``None``), on the bank's device.
    """
    dev = bank.device
    rows = rows.to(dev, torch.int64)
    views = views.to(dev, torch.float32)
    top, left, bh, bw = views[:, 0], views[:, 1], views[:, 2], views[:, 3]
    flip, code, shift, factor = views[:, 4] > 0.5, views[:, 5], views[:, 6], views[:, 7]
    # padded to the bank's largest slice (host ints: no device sync); the padding
    # gets zero weight, so the views are those of the per-slice crops
    hm, wm = bank.max_height, bank.max_width
    fill = bank.mins[rows]
    grid_y = torch.arange(hm, device=dev).expand(len(rows), hm)
    grid_x = torch.arange(wm, device=dev).expand(len(rows), wm)
    # slices padded to the batch's largest, shifted by their minimum: outside reads 0
    padded = _gather(bank.images, bank, rows, grid_y, grid_x, fill) - fill[:, None, None]
    ry = resize_weights(top, bh, size, hm)
    rx = resize_weights(left, bw, size, wm)
    rx = torch.where(flip[:, None, None], rx.flip(1), rx)
    image = ry @ padded @ rx.transpose(1, 2) + fill[:, None, None]
    image = _jitter_batch(image, code, shift, factor)[:, None]
    if not with_labels:
        return image, None
    if bank.labels is None:
        raise ValueError("this bank holds no labels")
    ly = _centres(top, bh, size).add(0.5).floor().long()
    lx = _centres(left, bw, size).add(0.5).floor().long()
    lx = torch.where(flip[:, None], lx.flip(-1), lx)
    background = torch.zeros(len(rows), device=dev, dtype=torch.int64)
    return image, _gather(bank.labels, bank, rows, ly, lx, background)
