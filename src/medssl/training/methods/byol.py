"""BYOL (Grill et al. 2020): the study's method, its networks and step unchanged.

The networks are :class:`medssl.models.byol.BYOL`; :meth:`BYOLMethod.step` runs the
same operations in the same order as before the registry existed (online view 1,
online view 2, target view 1, target view 2, the symmetric loss, the online spread),
so runs and their resumes are bit-identical to the earlier BYOL module's.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.configs import PretrainConfig
from medssl.models.byol import BYOL
from medssl.training.losses import representation_std, symmetric_byol_loss
from medssl.training.methods.base import Method, StepContext, StepOutput


class BYOLMethod(BYOL, Method):
    """BYOL's online/target networks with the study's loss."""

    name = "byol"

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__(backbone, cfg.heads)
        self.reduction = cfg.loss_reduction
        self.spread_dim = cfg.heads.proj_out

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        z1, p1 = self.forward_online(v1)
        _z2, p2 = self.forward_online(v2)
        t1, t2 = self.forward_target(v1), self.forward_target(v2)
        loss = symmetric_byol_loss(p1, p2, t1, t2, self.reduction)
        return StepOutput(loss, {}, representation_std(z1))

    def export_encoder(self) -> nn.Module:
        return self.target_backbone

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """The pairs :meth:`BYOL.update_target` updates (it runs, unchanged, by MRO)."""
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    def compile_parts(self) -> None:
        for net in (self.backbone, self.target_backbone, self.projector, self.predictor):
            net.compile()
