"""DenseCL (Wang et al., "Dense Contrastive Learning for Self-Supervised Visual
Pre-Training", CVPR 2021): a global and a dense InfoNCE loss, as lightly's DenseCL.

The backbone's feature map ``(B, C, h, w)`` (timm ``forward_features``) feeds a global
head (on the pooled vector, timm ``forward_head``) and a dense head (on each of the
``h·w`` locations), both ``DenseCLProjectionHead``. Each query location's positive is
the key location whose *backbone* feature is most similar (lightly
``select_most_similar``). Both losses are ``NTXentLoss`` with a queue of negatives:
``(1 − λ)·global + λ·dense``. The query network (view 1) is trained and exported, the
key network (view 2) is its EMA, as in the paper. Dense negatives: every key location
is queued (lightly's DenseCL); the paper queues each image's mean key.
"""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import DenseCLProjectionHead
from lightly.models.utils import select_most_similar
from torch import nn

from medssl.configs import PretrainConfig
from medssl.models.encoders import encoder_dim
from medssl.training.losses import representation_std
from medssl.training.methods.base import Method, StepContext, StepOutput
from medssl.training.methods.momentum import ema_copy


def dense_forward(
    backbone: nn.Module, global_head: nn.Module, local_head: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(features (B, hw, C), global projection (B, D), local projections (B, hw, D))``."""
    fmap = backbone.forward_features(x)
    pooled = backbone.forward_head(fmap)
    features = fmap.flatten(start_dim=2).permute(0, 2, 1)
    return features, global_head(pooled), local_head(features)


class DenseCL(Method):
    name = "densecl"

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__()
        heads, obj = cfg.heads, cfg.objective
        dim = encoder_dim(backbone)
        self.backbone = backbone
        self.global_head = DenseCLProjectionHead(dim, heads.proj_hidden, heads.proj_out)
        self.local_head = DenseCLProjectionHead(dim, heads.proj_hidden, heads.proj_out)
        self.target_backbone = ema_copy(backbone)
        self.target_global_head = ema_copy(self.global_head)
        self.target_local_head = ema_copy(self.local_head)
        bank = (obj.queue_size, heads.proj_out)
        self.global_loss = NTXentLoss(
            obj.temperature, memory_bank_size=bank, gather_distributed=True
        )
        self.local_loss = NTXentLoss(
            obj.temperature, memory_bank_size=bank, gather_distributed=True
        )
        self.weight = obj.dense_weight
        self.spread_dim = heads.proj_out

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        q_feat, q_global, q_local = dense_forward(
            self.backbone, self.global_head, self.local_head, v1
        )
        with torch.no_grad():
            k_feat, k_global, k_local = dense_forward(
                self.target_backbone, self.target_global_head, self.target_local_head, v2
            )
            k_local = select_most_similar(q_feat.detach().float(), k_feat.float(), k_local)
        loss_global = self.global_loss(q_global.float(), k_global.float())
        loss_local = self.local_loss(
            q_local.flatten(end_dim=1).float(), k_local.flatten(end_dim=1).float()
        )
        loss = (1 - self.weight) * loss_global + self.weight * loss_local
        logs = {"loss_global": loss_global.detach(), "loss_dense": loss_local.detach()}
        return StepOutput(loss, logs, representation_std(q_global))

    def online_parameters(self) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "backbone": self.backbone,
                "global_head": self.global_head,
                "local_head": self.local_head,
            }
        )

    def export_encoder(self) -> nn.Module:
        return self.backbone

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [
            (self.backbone, self.target_backbone),
            (self.global_head, self.target_global_head),
            (self.local_head, self.target_local_head),
        ]
