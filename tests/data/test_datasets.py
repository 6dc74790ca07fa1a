"""Datasets read the cache, not the source files, and batch as training expects."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.datasets import LabelledSlices, TwoViews, Volumes
from medssl.data.splits import budget_slices, make_split, unlabelled_pool
from medssl.data.transforms import byol_view_config, segmentation_config
from tests import builders


def _cache(tmp_path: Path) -> SliceCache:
    root = builders.make_acdc(tmp_path / "src", n_patients=4)
    cache = SliceCache.open(prepare_cache(root, tmp_path / "cache").path)
    shutil.rmtree(root)  # datasets must not touch the source files
    return cache


def test_labelled_train_batches(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    split = make_split([v.patient for v in cache.volumes], scheme="random")
    idx = budget_slices(cache, split, None, seed=0)
    ds = LabelledSlices(cache, idx, segmentation_config(32), seed=0)
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].shape == (4, 32, 32) and batch["label"].dtype == torch.int64
    again = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert torch.equal(batch["image"], again["image"])
    ds.set_epoch(1)
    assert not torch.equal(next(iter(DataLoader(ds, batch_size=4)))["image"], batch["image"])


def test_labelled_eval_is_padded_and_deterministic(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    idx = [i for i in range(len(cache)) if cache.label(i) is not None]
    ds = LabelledSlices(cache, idx)
    item = ds[0]
    assert item["image"].shape == (1, 32, 32)
    top, left, h, w = item["valid"].tolist()
    assert (h, w) == builders.SHAPE[1:]
    assert torch.equal(
        item["label"][top : top + h, left : left + w], torch.from_numpy(cache.label(idx[0])).long()
    )
    assert torch.equal(ds[0]["image"], item["image"])


def test_two_views_differ_and_are_reproducible(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    pool = unlabelled_pool(cache, [v.patient for v in cache.volumes])
    ds = TwoViews(cache, pool, byol_view_config(24), seed=7)
    item = ds[3]
    assert item["view1"].shape == item["view2"].shape == (1, 24, 24)
    assert not torch.equal(item["view1"], item["view2"])
    assert torch.equal(ds[3]["view1"], item["view1"])


def test_volumes_dataset_whole_volumes(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    ds = Volumes(cache, ["patient001", "patient002"])
    assert len(ds) == 4
    item = ds[0]
    s, h, w = builders.SHAPE
    assert item["image"].shape == (s, 1, 32, 32) and item["label"].shape == (s, h, w)
