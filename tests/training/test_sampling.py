"""The epoch sampler: deterministic order, rank shards, exact resume, and a fresh
augmentation each time an oversampled slice comes back."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch

from medssl.data.cache_read import SliceCache
from medssl.data.datasets import LabelledSlices, TwoViews
from medssl.data.splits import budget_slices, make_split
from medssl.data.transforms import byol_view_config, segmentation_config
from medssl.training.sampling import EpochSampler, resumable_loader


@pytest.fixture(scope="module")
def cache(tiny_cache: Path) -> SliceCache:
    return SliceCache.open(tiny_cache)


def test_order_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochSampler(10, 2, seed=3), EpochSampler(10, 2, seed=3)
    assert torch.equal(a.order(0), b.order(0))
    assert not torch.equal(a.order(0), a.order(1))
    assert not torch.equal(a.order(0), EpochSampler(10, 2, seed=4).order(0))
    assert sorted(a.order(0).tolist()) == list(range(10))


def test_oversampling_sees_every_index_equally_often_and_numbers_the_draws() -> None:
    sampler = EpochSampler(3, batch_size=4, num_samples=24)
    keys = list(sampler)
    assert len(keys) == 24
    counts = defaultdict(list)
    for epoch, index, draw in keys:
        assert epoch == 0
        counts[index].append(draw)
    # each index once per concatenated permutation: draws 0..7, each exactly once
    assert {i: sorted(d) for i, d in counts.items()} == {i: list(range(8)) for i in range(3)}


def test_single_pass_epochs_use_draw_zero() -> None:
    keys = list(EpochSampler(10, batch_size=2))
    assert len(keys) == 10 and {d for _, _, d in keys} == {0}


def test_ranks_partition_the_global_order() -> None:
    world = 3
    shards = [
        list(EpochSampler(7, 2, seed=1, num_samples=20, rank=r, world=world)) for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1  # same number of batches on every rank
    merged = [shards[p % world][p // world] for p in range(world * len(shards[0]))]
    single = EpochSampler(7, 2 * world, seed=1, num_samples=20)
    assert merged == list(single)


def test_resume_replays_the_rest_of_the_epoch() -> None:
    full = list(EpochSampler(9, 2, seed=2, num_samples=30))
    resumed = EpochSampler(9, 2, seed=2, num_samples=30)
    resumed.resume_at(0, 5)
    assert list(resumed) == full[10:]
    assert list(resumed) == full  # the skip applies once


def test_repeated_slices_get_fresh_augmentation(cache: SliceCache) -> None:
    """Two labelled slices trained for 16 samples: each slice comes back 8 times in the
    one-epoch fine-tune and must not be the same crop every time."""
    split = make_split([v.patient for v in cache.volumes], scheme="random")
    budget = budget_slices(cache, split, 2, seed=0)
    for params_only in (False, True):
        ds = LabelledSlices(cache, budget, segmentation_config(32), seed=0, params_only=params_only)
        loader = resumable_loader(ds, 4, seed=0, rank=0, world=1, num_workers=0, num_samples=16)
        seen = defaultdict(list)
        for batch in loader:
            key = "params" if params_only else "image"
            for idx, item in zip(batch["index"].tolist(), batch[key], strict=True):
                seen[idx].append(item)
        assert sorted(len(v) for v in seen.values()) == [8, 8]
        for views in seen.values():
            distinct = {tuple(v.flatten().tolist()) for v in views}
            assert len(distinct) == len(views)


def test_single_pass_keys_match_index_only_requests(cache: SliceCache) -> None:
    """Draw 0 keeps the augmentation streams of single-pass epochs (BYOL)."""
    pool = list(range(6))
    ds = TwoViews(cache, pool, byol_view_config(24), seed=5)
    ds.set_epoch(2)
    for i in pool:
        assert torch.equal(ds[i]["view1"], ds[(2, i, 0)]["view1"])
        assert torch.equal(ds[(2, i)]["view2"], ds[(2, i, 0)]["view2"])
        assert not torch.equal(ds[(2, i, 0)]["view1"], ds[(2, i, 1)]["view1"])
