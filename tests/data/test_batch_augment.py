"""The batched on-device augmentation gives the per-sample path's views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medssl.configs import MEDSSL_FINETUNE
from medssl.data.batch_augment import SliceBank, augment_batch, resize_weights
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import LabelledSlices, TwoViews
from medssl.data.transforms import (
    AugmentConfig,
    ViewParams,
    apply_view,
    byol_view_config,
    sample_generator,
    sample_view,
    segmentation_config,
)


@pytest.fixture(scope="module")
def cache(tiny_cache: Path) -> SliceCache:
    return SliceCache.open(tiny_cache)


def _labelled(cache: SliceCache) -> list[int]:
    return [i for i in range(len(cache)) if cache.index["lab_offset"][i] >= 0]


def _per_sample(cache: SliceCache, indices, views: list[ViewParams], size: int):
    images, labels = [], []
    for i, v in zip(indices, views, strict=True):
        image = torch.from_numpy(cache.image(i))[None]
        label = torch.from_numpy(cache.label(i).astype(np.int64))
        a, b = apply_view(image, label, v, size)
        images.append(a)
        labels.append(b)
    return torch.stack(images), torch.stack(labels)


@pytest.mark.parametrize(
    "cfg",
    [
        byol_view_config(24),
        segmentation_config(24),
        AugmentConfig(mode="zoom", size=40, zoom=(0.3, 0.5)),  # windows larger than slices
        AugmentConfig(size=96),  # upsampling
        AugmentConfig(size=24, **MEDSSL_FINETUNE["augment"]),  # medssl's zoom + std jitter
    ],
    ids=["byol", "finetune", "zoom-past-edges", "upsample", "medssl-zoom-std"],
)
@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ),
    ],
)
def test_batched_matches_per_sample(cache: SliceCache, cfg: AugmentConfig, device: str) -> None:
    idx = _labelled(cache)[:12]
    views = [
        sample_view(*cache.slice_shape(i), cfg, sample_generator(3, 1, n))
        for n, i in enumerate(idx)
    ]
    bank = SliceBank.from_cache(cache, idx, with_labels=True).to(device)
    table = torch.tensor([v.as_row() for v in views])
    image, label = augment_batch(bank, torch.arange(len(idx)), table, cfg.size, True)
    assert image.device.type == label.device.type == device
    image, label = image.cpu(), label.cpu()
    ref_image, ref_label = _per_sample(cache, idx, views, cfg.size)
    assert image.shape == (len(idx), 1, cfg.size, cfg.size)
    assert torch.equal(label, ref_label)
    assert torch.allclose(image, ref_image, atol=1e-4), (image - ref_image).abs().max()


def test_identity_crop_returns_the_slice(cache: SliceCache) -> None:
    i = _labelled(cache)[0]
    h, w = cache.slice_shape(i)
    side = min(h, w)
    bank = SliceBank.from_cache(cache, [i], with_labels=True)
    row = torch.tensor([[0, 0, side, side, 0, 0, 0, 1]], dtype=torch.float32)
    image, label = augment_batch(bank, torch.tensor([0]), row, side, True)
    assert torch.allclose(image[0, 0], torch.from_numpy(cache.image(i))[:side, :side], atol=1e-5)
    assert torch.equal(label[0], torch.from_numpy(cache.label(i)[:side, :side].astype(np.int64)))
    flipped, flipped_label = augment_batch(
        bank, torch.tensor([0]), row.clone().index_fill_(1, torch.tensor([4]), 1.0), side, True
    )
    assert torch.allclose(flipped, image.flip(-1), atol=1e-5)
    assert torch.equal(flipped_label, label.flip(-1))


def test_outside_the_slice_reads_minimum_and_background(cache: SliceCache) -> None:
    i = _labelled(cache)[0]
    h, w = cache.slice_shape(i)
    bank = SliceBank.from_cache(cache, [i], with_labels=True)
    # a window entirely to the left of the slice
    row = torch.tensor([[0, -2 * w, h, w, 0, 0, 0, 1]], dtype=torch.float32)
    image, label = augment_batch(bank, torch.tensor([0]), row, 16, True)
    assert torch.allclose(image, torch.full_like(image, float(cache.image(i).min())))
    assert not label.any()


def test_jitter_matches_formula(cache: SliceCache) -> None:
    i = _labelled(cache)[0]
    h, w = cache.slice_shape(i)
    bank = SliceBank.from_cache(cache, [i])
    plain = torch.tensor([[0, 0, h, w, 0, 0, 0.3, 1.2]], dtype=torch.float32)
    jittered = plain.clone()
    jittered[0, 5] = 1
    a, _ = augment_batch(bank, torch.tensor([0]), plain, 20)
    b, _ = augment_batch(bank, torch.tensor([0]), jittered, 20)
    expected = (a - a.mean()) * 1.2 + a.mean() + 0.3 * a.std()
    assert torch.allclose(b, expected, atol=1e-5)


def test_resize_weights_rows_sum_to_one_inside_the_slice() -> None:
    start, length = torch.tensor([0.0, 5.0]), torch.tensor([40.0, 10.0])
    weights = resize_weights(start, length, 8, 64)
    assert weights.shape == (2, 8, 64)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 8))
    # no weight outside each crop
    assert not weights[1, :, :5].any() and not weights[1, :, 15:].any()


def test_bank_holds_only_the_requested_slices(cache: SliceCache) -> None:
    idx = _labelled(cache)[3:7]
    bank = SliceBank.from_cache(cache, idx, with_labels=True)
    sizes = [int(np.prod(cache.slice_shape(i))) for i in idx]
    assert len(bank) == 4 and bank.images.numel() == sum(sizes)
    assert bank.nbytes < sum(sizes) * 4
    first = bank.images[: sizes[0]].float().reshape(cache.slice_shape(idx[0]))
    assert torch.allclose(first, torch.from_numpy(cache.image(idx[0])))


def test_params_only_datasets_carry_the_same_draws(cache: SliceCache) -> None:
    idx = _labelled(cache)[:6]
    cfg = segmentation_config(24)
    full = LabelledSlices(cache, idx, cfg, seed=5)
    draws = LabelledSlices(cache, idx, cfg, seed=5, params_only=True)
    bank = SliceBank.from_cache(cache, idx, with_labels=True)
    for n in range(len(idx)):
        ref = full[(2, n)]
        item = draws[(2, n)]
        assert set(item) == {"row", "params", "index"}
        image, label = augment_batch(bank, item["row"][None], item["params"][None], 24, True)
        assert torch.equal(label[0], ref["label"])
        assert torch.allclose(image[0], ref["image"], atol=1e-4)
    views = TwoViews(cache, idx, byol_view_config(16), seed=1)
    view_draws = TwoViews(cache, idx, byol_view_config(16), seed=1, params_only=True)
    pool_bank = SliceBank.from_cache(cache, idx)
    ref, item = views[(0, 2)], view_draws[(0, 2)]
    v2, _ = augment_batch(pool_bank, item["row"][None], item["params2"][None], 16)
    assert torch.allclose(v2[0], ref["view2"], atol=1e-4)
