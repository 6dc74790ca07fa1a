"""PyTorch datasets over a prepared :class:`~medssl.data.cache_read.SliceCache`.

Nothing here decodes NIfTI or keeps class-level state: each dataset holds its own
cache handle and a list of slice indices. Augmentation randomness comes from
:func:`~medssl.data.transforms.sample_generator` keyed by ``(seed, epoch, index, draw)``.
Items may be requested by ``index`` (epoch taken from :meth:`set_epoch`, draw 0) or by an
``(epoch, index, draw)`` triple, as :class:`~medssl.training.sampling.EpochSampler`
yields (an ``(epoch, index)`` pair means draw 0), which keeps worker processes free of
shared mutable state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from medssl.data.cache_read import SliceCache
from medssl.data.transforms import (
    AugmentConfig,
    apply_view,
    pad_to_multiple,
    sample_generator,
    sample_view,
)


class _CacheDataset(Dataset):
    def __init__(self, cache: SliceCache | str | Path, indices: list[int], seed: int = 0) -> None:
        self.cache = cache if isinstance(cache, SliceCache) else SliceCache.open(cache)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def _key(self, key: int | tuple[int, ...]) -> tuple[int, int, int]:
        if isinstance(key, tuple):
            return int(key[0]), int(key[1]), int(key[2]) if len(key) > 2 else 0
        return self.epoch, int(key), 0

    def _image(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.cache.image(int(self.indices[i])))[None]


class LabelledSlices(_CacheDataset):
    """Labelled slices for segmentation.

    Train mode returns augmented ``(1, S, S)`` crops with ``(S, S)`` labels; eval mode
    (``augment_cfg=None``) returns the whole slice centre-padded to a multiple of 32
    and the valid box, deterministically.

    Items are dicts: ``image`` float32, ``label`` int64, ``index`` (cache slice index)
    and, in eval mode, ``valid`` = ``(top, left, H, W)``. With ``params_only`` (train
    mode), items carry the random draws instead of pixels: ``row`` (position in
    ``indices``) and ``params`` (a :class:`~medssl.data.transforms.ViewParams` row),
    for :func:`medssl.data.batch_augment.augment_batch` on the training device.
    """

    def __init__(
        self,
        cache: SliceCache | str | Path,
        indices: list[int],
        augment_cfg: AugmentConfig | None = None,
        seed: int = 0,
        params_only: bool = False,
    ) -> None:
        super().__init__(cache, indices, seed)
        self.augment_cfg = augment_cfg
        self.params_only = params_only and augment_cfg is not None
        for i in self.indices[:1]:
            if self.cache.index["lab_offset"][i] < 0:
                raise ValueError(f"slice {i} of {self.cache.path} is unlabelled")

    def __getitem__(self, key: int | tuple[int, ...]) -> dict[str, torch.Tensor]:
        epoch, i, draw = self._key(key)
        idx = int(self.indices[i])
        if self.params_only:
            gen = sample_generator(self.seed, epoch, i, draw)
            view = sample_view(*self.cache.slice_shape(idx), self.augment_cfg, gen)
            return {
                "row": torch.tensor(i),
                "params": torch.tensor(view.as_row()),
                "index": torch.tensor(idx),
            }
        image = self._image(i)
        lab = self.cache.label(idx)
        if lab is None:
            raise ValueError(f"slice {idx} of {self.cache.path} is unlabelled")
        label = torch.from_numpy(lab.astype(np.int64))
        if self.augment_cfg is None:
            image, label, valid = pad_to_multiple(image, label)
            return {
                "image": image,
                "label": label,
                "index": torch.tensor(idx),
                "valid": torch.tensor(valid),
            }
        gen = sample_generator(self.seed, epoch, i, draw)
        view = sample_view(*image.shape[-2:], self.augment_cfg, gen)
        image, label = apply_view(image, label, view, self.augment_cfg.size)
        return {"image": image, "label": label, "index": torch.tensor(idx)}


class TwoViews(_CacheDataset):
    """Two independently augmented views of each unlabelled slice, for BYOL.

    Items are dicts ``{"view1": (1, S, S), "view2": (1, S, S), "index": ()}``; with
    ``params_only``, ``{"row", "params1", "params2", "index"}`` (the draws of the two
    views, see :class:`LabelledSlices`).
    """

    def __init__(
        self,
        cache: SliceCache | str | Path,
        indices: list[int],
        augment_cfg: AugmentConfig,
        seed: int = 0,
        params_only: bool = False,
    ) -> None:
        super().__init__(cache, indices, seed)
        self.augment_cfg = augment_cfg
        self.params_only = params_only

    def __getitem__(self, key: int | tuple[int, ...]) -> dict[str, torch.Tensor]:
        epoch, i, draw = self._key(key)
        idx = int(self.indices[i])
        gen = sample_generator(self.seed, epoch, i, draw)
        shape = self.cache.slice_shape(idx)
        p1 = sample_view(*shape, self.augment_cfg, gen)
        p2 = sample_view(*shape, self.augment_cfg, gen)
        if self.params_only:
            return {
                "row": torch.tensor(i),
                "params1": torch.tensor(p1.as_row()),
                "params2": torch.tensor(p2.as_row()),
                "index": torch.tensor(idx),
            }
        image = self._image(i)
        v1, _ = apply_view(image, None, p1, self.augment_cfg.size)
        v2, _ = apply_view(image, None, p2, self.augment_cfg.size)
        return {"view1": v1, "view2": v2, "index": torch.tensor(idx)}


class Volumes(Dataset):
    """Whole labelled volumes for 3D evaluation: one item per volume.

    Items: ``image`` ``(S, 1, H', W')`` padded to a multiple of 32, ``label``
    ``(S, H, W)`` unpadded, ``valid`` box, and ``volume`` (index into ``cache.volumes``).
    """

    def __init__(
        self, cache: SliceCache | str | Path, patients: list[str] | tuple[str, ...]
    ) -> None:
        self.cache = cache if isinstance(cache, SliceCache) else SliceCache.open(cache)
        keep = set(patients)
        self.volume_ids = [
            k for k, v in enumerate(self.cache.volumes) if v.labelled and v.patient in keep
        ]

    def __len__(self) -> int:
        return len(self.volume_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        vid = self.volume_ids[i]
        rows = self.cache.volume_slices(vid)
        image = torch.from_numpy(np.stack([self.cache.image(k) for k in rows]))[:, None]
        label = torch.from_numpy(np.stack([self.cache.label(k) for k in rows]).astype(np.int64))
        padded, _, valid = pad_to_multiple(image, None)
        return {"image": padded, "label": label, "valid": torch.tensor(valid), "volume": vid}
