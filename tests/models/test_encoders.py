"""Encoders and the U-Net: 1-channel adaptation, architectures, the study's decoder."""

from __future__ import annotations

import pytest
import timm
import torch

from medssl.models.encoders import adapt_first_conv, create_encoder, encoder_dim, first_conv_name
from medssl.models.unet import build_unet, encoder_of, set_encoder_trainable


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_b0"])
def test_one_channel_adaptation_is_rgb_sum_via_declared_first_conv(arch: str) -> None:
    rgb = timm.create_model(arch, num_classes=0).state_dict()
    model = create_encoder(arch, in_chans=1)
    name = first_conv_name(model)
    assert name == {"resnet18": "conv1", "efficientnet_b0": "conv_stem"}[arch]
    state = adapt_first_conv(rgb, model)
    key = name + ".weight"
    assert torch.equal(state[key], rgb[key].sum(dim=1, keepdim=True))
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 1, 64, 64)
    ref = timm.create_model(arch, num_classes=0).eval()
    ref.load_state_dict(rgb)
    model.eval()
    torch.testing.assert_close(model(x), ref(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("arch", "dim"), [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048), ("resnet101", 2048)]
)
def test_study_architectures(arch: str, dim: int) -> None:
    assert encoder_dim(create_encoder(arch)) == dim


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown timm architecture"):
        create_encoder("resnet-9000")


def test_unet_has_the_studys_decoder_and_loads_encoder_files() -> None:
    unet = build_unet("resnet50", 4)
    decoder = sum(p.numel() for p in unet.decoder.parameters())
    assert 8.5e6 < decoder < 9.5e6  # the study's ≈9M decoder
    assert unet(torch.randn(1, 1, 64, 96)).shape == (1, 4, 64, 96)
    enc = create_encoder("resnet50")
    encoder_of(unet).load_state_dict(enc.state_dict(), strict=True)


def test_freeze_encoder() -> None:
    unet = build_unet("resnet18", 4)
    set_encoder_trainable(unet, False)
    assert not any(p.requires_grad for p in encoder_of(unet).parameters())
    assert all(p.requires_grad for p in unet.decoder.parameters())
    set_encoder_trainable(unet, True)
    assert all(p.requires_grad for p in encoder_of(unet).parameters())
