"""The registry of self-supervised pretraining methods.

Names, kinds, sources and recipes are in :data:`medssl.configs.METHODS` (plain data,
read by the presets and the CLI); the implementations are here, one
:class:`~medssl.training.methods.base.Method` class per name. :func:`build_method`
makes the method of a config, its encoder initialised from ``cfg.init`` before any
EMA copy is taken.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from medssl.configs import METHODS, PretrainConfig
from medssl.models.encoders import create_encoder
from medssl.models.unet import encoder_of
from medssl.models.weights import LoadReport
from medssl.training.methods.base import Method, MethodBuffers, StepContext, StepOutput
from medssl.training.methods.byol import BYOLMethod
from medssl.training.methods.contrastive import MoCoV2, SimCLR
from medssl.training.methods.dense import DenseCL
from medssl.training.methods.masked import MaskedImageModelling, build_mim_unet
from medssl.training.methods.redundancy import DINO, BarlowTwins, VICReg

__all__ = [
    "IMPLEMENTATIONS",
    "Method",
    "MethodBuffers",
    "StepContext",
    "StepOutput",
    "build_method",
]

#: registry name → implementation (the same names as :data:`medssl.configs.METHODS`)
IMPLEMENTATIONS: dict[str, type[Method]] = {
    "byol": BYOLMethod,
    "simclr": SimCLR,
    "mocov2": MoCoV2,
    "vicreg": VICReg,
    "barlowtwins": BarlowTwins,
    "dino": DINO,
    "densecl": DenseCL,
    "mim": MaskedImageModelling,
}
assert set(IMPLEMENTATIONS) == set(METHODS), "registry and catalogue disagree"


def build_method(
    cfg: PretrainConfig, load: Callable[[nn.Module], LoadReport | None]
) -> tuple[Method, LoadReport | None]:
    """The method ``cfg.method`` with fresh networks; ``load(encoder)`` fills the timm
    encoder (the U-Net's for ``mim``) from the weight source first, so EMA copies start
    from the imported weights."""
    cls = IMPLEMENTATIONS[cfg.method]
    if cls is MaskedImageModelling:
        unet = build_mim_unet(cfg)
        report = load(encoder_of(unet))
        return cls(unet, cfg), report
    encoder = create_encoder(cfg.arch, in_chans=1)
    report = load(encoder)
    return cls(encoder, cfg), report
