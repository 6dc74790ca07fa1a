"""Non-contrastive global methods: VICReg, Barlow Twins and DINO (lightly's losses).

- VICReg (Bardes et al. 2022): ``VICRegLoss`` (invariance λ, variance μ, covariance ν)
  on a 3-layer expander (``BarlowTwinsProjectionHead``: Linear-BN-ReLU ×2, Linear; the
  VICReg paper's expander).
- Barlow Twins (Zbontar et al. 2021): ``BarlowTwinsLoss`` (on-diagonal + λ·off-diagonal
  of the batch-normalised cross-correlation) times solo-learn's ``scale_loss``.
- DINO (Caron et al. 2021): student and EMA teacher with ``DINOProjectionHead``
  (MLP → bottleneck → weight-normalised prototypes); ``DINOLoss`` with the teacher
  temperature warmed up linearly per step over ``dino_warmup_teacher_temp_epochs``
  epochs (the paper's schedule, per step instead of per epoch). The teacher is exported.
"""

from __future__ import annotations

import torch
from lightly.loss import BarlowTwinsLoss, DINOLoss, VICRegLoss
from lightly.models.modules import BarlowTwinsProjectionHead, DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad
from torch import nn

from medssl.configs import ObjectiveConfig, PretrainConfig
from medssl.models.encoders import encoder_dim
from medssl.training.losses import representation_std
from medssl.training.methods.base import Method, StepContext, StepOutput, TwoBranch
from medssl.training.methods.momentum import ema_copy


class VICReg(TwoBranch):
    name = "vicreg"
    head = BarlowTwinsProjectionHead  # VICReg's 3-layer expander

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__(backbone, cfg)
        obj = cfg.objective
        self.criterion = VICRegLoss(
            obj.vicreg_sim, obj.vicreg_var, obj.vicreg_cov, gather_distributed=True
        )

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return self.criterion(z1, z2)


class BarlowTwins(TwoBranch):
    name = "barlowtwins"
    head = BarlowTwinsProjectionHead

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__(backbone, cfg)
        self.scale = cfg.objective.barlow_scale
        self.criterion = BarlowTwinsLoss(cfg.objective.barlow_lambda, gather_distributed=True)

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return self.scale * self.criterion(z1, z2)


def teacher_temperature(obj: ObjectiveConfig, epoch: float) -> float:
    """DINO's teacher temperature: linear from the warmup value to the final one over
    ``dino_warmup_teacher_temp_epochs`` epochs, then constant."""
    span = obj.dino_warmup_teacher_temp_epochs
    if span <= 0 or epoch >= span:
        return obj.dino_teacher_temp
    t0, t1 = obj.dino_warmup_teacher_temp, obj.dino_teacher_temp
    return t0 + (t1 - t0) * epoch / span


class DINO(Method):
    name = "dino"

    def __init__(self, backbone: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__()
        heads, obj = cfg.heads, cfg.objective
        self.obj = obj
        self.backbone = backbone
        dims = (encoder_dim(backbone), heads.proj_hidden, heads.proj_out, obj.dino_prototypes)
        self.head = DINOProjectionHead(*dims)
        self.teacher_backbone = ema_copy(self.backbone)
        # the weight-normalised last layer cannot be deep-copied: build, then copy values
        self.teacher_head = DINOProjectionHead(*dims)
        self.teacher_head.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.teacher_head)
        self.criterion = DINOLoss(
            output_dim=obj.dino_prototypes,
            warmup_teacher_temp=obj.dino_warmup_teacher_temp,
            teacher_temp=obj.dino_teacher_temp,
            warmup_teacher_temp_epochs=max(1, obj.dino_warmup_teacher_temp_epochs),
            student_temp=obj.dino_student_temp,
            center_momentum=obj.dino_center_momentum,
        )
        self.spread_dim = obj.dino_prototypes

    @torch.no_grad()
    def _teacher(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher_head(self.teacher_backbone(x)).float()

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        t1, t2 = self._teacher(v1), self._teacher(v2)
        s1 = self.head(self.backbone(v1)).float()
        s2 = self.head(self.backbone(v2)).float()
        temp = teacher_temperature(self.obj, ctx.epoch)
        loss = self.criterion([t1, t2], [s1, s2], teacher_temp=temp)
        return StepOutput(loss, {"teacher_temp": torch.tensor(temp)}, representation_std(s1))

    def online_parameters(self) -> nn.ModuleDict:
        return nn.ModuleDict({"backbone": self.backbone, "head": self.head})

    def export_encoder(self) -> nn.Module:
        return self.teacher_backbone

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.teacher_backbone), (self.head, self.teacher_head)]
