"""BYOL networks: online encoder + projector + predictor, and an EMA target.

Grill et al., "Bootstrap your own latent: a new approach to self-supervised
learning", NeurIPS 2020. Heads come from lightly (``BYOLProjectionHead``:
Linear → BN → ReLU → Linear; ``BYOLPredictionHead`` the same shape), the EMA update
from lightly's fused ``update_momentum`` (``torch._foreach_*``).

Shapes: a view batch ``(B, 1, S, S)`` → backbone ``(B, F)`` (F = 2048 for ResNet-50)
→ projection ``(B, 256)`` → prediction ``(B, 256)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import nn

from medssl.models.encoders import create_encoder, encoder_dim


@dataclass(frozen=True)
class HeadConfig:
    """Projector and predictor sizes (the paper: 4096 → 256, predictor 8192 → 256)."""

    proj_hidden: int = 4096
    proj_out: int = 256
    pred_hidden: int = 8192


class BYOL(nn.Module):
    """Online and target networks of BYOL.

    Args:
        backbone: the online encoder (pooled output); the target starts as a copy.
        heads: head sizes.
    """

    def __init__(self, backbone: nn.Module, heads: HeadConfig = HeadConfig()) -> None:
        super().__init__()
        dim = encoder_dim(backbone)
        self.backbone = backbone
        self.projector = BYOLProjectionHead(dim, heads.proj_hidden, heads.proj_out)
        self.predictor = BYOLPredictionHead(heads.proj_out, heads.pred_hidden, heads.proj_out)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        deactivate_requires_grad(self.target_backbone)
        deactivate_requires_grad(self.target_projector)

    @classmethod
    def from_arch(cls, arch: str, heads: HeadConfig = HeadConfig()) -> BYOL:
        return cls(create_encoder(arch, in_chans=1), heads)

    def online_parameters(self) -> nn.ModuleDict:
        """The trained modules (what the optimiser sees)."""
        return nn.ModuleDict(
            {"backbone": self.backbone, "projector": self.projector, "predictor": self.predictor}
        )

    def forward_online(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, S, S)`` → ``(projection, prediction)``, each ``(B, proj_out)``."""
        z = self.projector(self.backbone(x))
        return z, self.predictor(z)

    @torch.no_grad()
    def forward_target(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, S, S)`` → target projection ``(B, proj_out)`` (no gradient)."""
        return self.target_projector(self.target_backbone(x))

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """EMA: ``θ_target ← τ·θ_target + (1 − τ)·θ_online`` (τ=1 keeps the target,
        τ=0 copies the online network)."""
        update_momentum(self.backbone, self.target_backbone, tau)
        update_momentum(self.projector, self.target_projector, tau)
