"""U-Net with a timm encoder (segmentation-models-pytorch's ``tu-`` encoders).

The decoder is smp's: at each of five stages, nearest-neighbour ×2 upsampling, skip
concatenation and two 3×3 conv-BN-ReLU blocks; with ResNet-50 and the default widths
(256, 128, 64, 32, 16) it has 9.0M parameters, the study's decoder. The encoder is the
timm ``features_only`` twin of :func:`medssl.models.encoders.create_encoder`, so every
encoder file of the weight importer loads into ``unet.encoder.model`` by name.
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
from torch import nn

from medssl.models.weights import LoadReport, load_weights


def build_unet(
    arch: str, num_classes: int, decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
) -> smp.Unet:
    """A randomly initialised 1-channel U-Net with ``num_classes`` output logits.

    Output shape: ``(B, num_classes, H, W)`` for input ``(B, 1, H, W)`` with H, W
    multiples of 32.
    """
    return smp.Unet(
        f"tu-{arch}",
        encoder_weights=None,
        in_channels=1,
        classes=num_classes,
        encoder_depth=len(decoder_channels),
        decoder_channels=list(decoder_channels),
        decoder_interpolation="nearest",
    )


def encoder_of(unet: smp.Unet) -> nn.Module:
    """The timm model inside the U-Net's encoder (target of the weight importer)."""
    return unet.encoder.model


def load_unet_encoder(
    unet: smp.Unet,
    source: str | Path,
    arch: str,
    layout: str | None = None,
    trust_pickle: bool = False,
) -> LoadReport:
    """Fill a U-Net's encoder from a weight source, loudly: the fine-tune's import, whose
    report (and its ``fingerprint``, kept in the run's ``init.json``) is over the tensors
    that landed in ``unet.encoder.model``."""
    return load_weights(encoder_of(unet), source, arch, layout=layout, trust_pickle=trust_pickle)


def set_encoder_trainable(unet: smp.Unet, trainable: bool) -> None:
    """Freeze or unfreeze the encoder's parameters (BN statistics follow train/eval mode)."""
    for p in encoder_of(unet).parameters():
        p.requires_grad_(trainable)
