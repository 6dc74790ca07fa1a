"""Global contrastive methods: SimCLR and MoCo v2 (lightly's heads and NT-Xent loss).

- SimCLR (Chen et al. 2020): NT-Xent over the 2B views of the (all-gathered) batch;
  ``SimCLRProjectionHead``.
- MoCo v2 (Chen et al. 2020, solo-learn's symmetric ``mocov2plus``): InfoNCE of each
  query against its key from the EMA network and a queue of negatives
  (``NTXentLoss(memory_bank_size=(queue, D))``: lightly's MoCo loss);
  ``MoCoProjectionHead`` (2-layer MLP, no batch norm). The query network is exported.
"""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead, SimCLRProjectionHead
from torch import nn

from medssl.configs import PretrainConfig
from medssl.models.encoders import encoder_dim
from medssl.training.losses import representation_std
from medssl.training.methods.base import Method, StepContext, StepOutput, TwoBranch
from medssl.training.methods.momentum import ema_copy


class SimCLR(TwoBranch):
    name = "simclr"
    head = SimCLRProjectionHead

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__(backbone, cfg)
        self.criterion = NTXentLoss(cfg.objective.temperature, gather_distributed=True)

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return self.criterion(z1, z2)


class MoCoV2(Method):
    name = "mocov2"

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__()
        heads, obj = cfg.heads, cfg.objective
        self.backbone = backbone
        self.projector = MoCoProjectionHead(
            encoder_dim(backbone), heads.proj_hidden, heads.proj_out
        )
        self.target_backbone = ema_copy(self.backbone)
        self.target_projector = ema_copy(self.projector)
        self.criterion = NTXentLoss(
            obj.temperature,
            memory_bank_size=(obj.queue_size, heads.proj_out),
            gather_distributed=True,
        )
        self.spread_dim = heads.proj_out

    @torch.no_grad()
    def _key(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_backbone(x)).float()

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        q1 = self.projector(self.backbone(v1)).float()
        q2 = self.projector(self.backbone(v2)).float()
        k1, k2 = self._key(v1), self._key(v2)
        loss = 0.5 * (self.criterion(q1, k2) + self.criterion(q2, k1))
        return StepOutput(loss, {}, representation_std(q1))

    def online_parameters(self) -> nn.ModuleDict:
        return nn.ModuleDict({"backbone": self.backbone, "projector": self.projector})

    def export_encoder(self) -> nn.Module:
        return self.backbone

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]
