"""Transform properties: shapes, label integrity, determinism, padding."""

from __future__ import annotations

import torch

from medssl.data.transforms import (
    AugmentConfig,
    augment,
    byol_view_config,
    jitter,
    pad_to_multiple,
    sample_crop,
    sample_generator,
)


def test_sample_crop_inside_and_in_scale_range() -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        top, left, h, w = sample_crop(50, 70, (0.08, 1.0), (3 / 4, 4 / 3), gen)
        assert top >= 0 and left >= 0 and top + h <= 50 and left + w <= 70
        assert 0.08 * 0.8 <= h * w / (50 * 70) <= 1.0


def test_augment_shapes_and_label_values_preserved() -> None:
    image = torch.randn(1, 60, 52)
    label = torch.randint(0, 4, (60, 52))
    img, lab = augment(image, label, AugmentConfig(size=32), sample_generator(0, 0, 0))
    assert img.shape == (1, 32, 32) and lab.shape == (32, 32)
    assert lab.dtype == torch.int64 and set(lab.unique().tolist()) <= {0, 1, 2, 3}


def test_augment_is_deterministic_per_seed_epoch_index() -> None:
    image = torch.randn(1, 40, 40)
    a = augment(image, None, byol_view_config(24), sample_generator(1, 2, 3))[0]
    b = augment(image, None, byol_view_config(24), sample_generator(1, 2, 3))[0]
    c = augment(image, None, byol_view_config(24), sample_generator(1, 3, 3))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_and_crop_move_label_with_image() -> None:
    """A label drawn from the image itself must still match it after augmentation."""
    image = torch.zeros(1, 64, 64)
    image[0, 10:30, 5:20] = 1.0
    label = (image[0] > 0.5).long()
    cfg = AugmentConfig(size=64, jitter_p=0.0, flip_p=0.5)
    for k in range(20):
        img, lab = augment(image, label, cfg, sample_generator(0, 0, k))
        agree = ((img[0] > 0.5).long() == lab).float().mean()
        assert agree > 0.97


def test_jitter_keeps_zscored_range_unclamped() -> None:
    image = torch.randn(1, 32, 32) * 2
    cfg = AugmentConfig(jitter_p=1.0)
    out = jitter(image, cfg, torch.Generator().manual_seed(0))
    assert out.min() < -1 and not torch.equal(out, image)
    assert torch.equal(jitter(image, AugmentConfig(jitter_p=0.0), torch.Generator()), image)


def test_pad_to_multiple_and_valid_box() -> None:
    image = torch.randn(1, 50, 33)
    label = torch.ones(50, 33, dtype=torch.long)
    out, lab, (top, left, h, w) = pad_to_multiple(image, label)
    assert out.shape[-2:] == (64, 64) and lab.shape == (64, 64)
    assert torch.equal(out[..., top : top + h, left : left + w], image)
    assert lab.sum() == 50 * 33


def test_zoom_mode_keeps_native_scale() -> None:
    """In zoom mode with zoom 1 the crop is a native-resolution window of the slice."""
    image = torch.arange(80 * 70, dtype=torch.float32).reshape(1, 80, 70)
    cfg = AugmentConfig(size=32, mode="zoom", zoom=(1.0, 1.0), flip_p=0.0, jitter_p=0.0)
    out, _ = augment(image, None, cfg, sample_generator(0, 0, 1))
    diffs = out[0, 0, 1:] - out[0, 0, :-1]
    assert torch.allclose(diffs, torch.ones_like(diffs))  # neighbouring pixels, no resampling


def test_zoom_mode_pads_small_slices() -> None:
    image = torch.randn(1, 20, 24)
    label = torch.ones(20, 24, dtype=torch.long)
    cfg = AugmentConfig(size=32, mode="zoom", zoom=(1.0, 1.0), jitter_p=0.0)
    out, lab = augment(image, label, cfg, sample_generator(0, 0, 0))
    assert out.shape == (1, 32, 32) and lab.sum() == 20 * 24
