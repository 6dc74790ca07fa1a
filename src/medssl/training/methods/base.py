"""What every self-supervised method supplies to the pretraining module.

A :class:`Method` is an ``nn.Module`` holding its networks (backbone, heads, EMA
copies) and its loss. :class:`~medssl.training.pretrain_module.PretrainModule` calls
:meth:`Method.step` on the two device-made views of a batch, optimises
:meth:`Method.online_parameters`, calls :meth:`Method.update_target` after each
optimiser step (methods with an EMA network), exports :meth:`Method.export_encoder`
(and :meth:`Method.export_decoder`) every epoch, and checkpoints
:meth:`Method.extra_state` (state outside ``state_dict``: lightly's memory banks are
non-persistent buffers) as the owned helper ``method_buffers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from lightly.loss.memory_bank import MemoryBankModule
from torch import nn

from medssl.models.encoders import encoder_dim
from medssl.training.losses import representation_std
from medssl.training.methods.momentum import ema_update


@dataclass(frozen=True)
class StepContext:
    """Where a training step stands (for schedules inside an objective)."""

    step: int
    schedule_steps: int
    steps_per_epoch: int
    rank: int = 0

    @property
    def epoch(self) -> float:
        """Fractional epoch of this step."""
        return self.step / max(1, self.steps_per_epoch)


@dataclass
class StepOutput:
    """One step's loss, its logged parts and the embedding spread for the collapse
    monitor (``None``: the method cannot collapse that way)."""

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    spread: torch.Tensor | None = None


class Method(nn.Module):
    """Base class of the registry's methods.

    Attributes:
        name: registry name.
        spread_dim: dimension of the embedding whose spread is monitored.
    """

    name = ""
    spread_dim = 1

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        """The loss of one batch of view pairs ``(B, 1, S, S)``."""
        raise NotImplementedError

    def online_parameters(self) -> nn.Module:
        """The trained modules (what the optimiser sees)."""
        raise NotImplementedError

    def export_encoder(self) -> nn.Module:
        """The timm encoder written as ``encoder_*.safetensors``."""
        raise NotImplementedError

    def export_decoder(self) -> nn.Module | None:
        """The U-Net decoder written as ``decoder_*.safetensors`` (``None``: none)."""
        return None

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(online, EMA copy)`` module pairs (``[]``: the method has no EMA network)."""
        return []

    @property
    def has_target(self) -> bool:
        """The method keeps an EMA network (``update_target`` does work)."""
        return bool(self.ema_pairs())

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """EMA update of the target networks after an optimiser step (``tau``: momentum)."""
        ema_update(self.ema_pairs(), tau)

    def compile_parts(self) -> None:
        """Compile the networks' forward passes (``nn.Module.compile``)."""
        for module in self.online_parameters().values():
            module.compile()

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Non-persistent buffers that resume needs (the used memory banks), by name."""
        out: dict[str, torch.Tensor] = {}
        for name, module in self.named_modules():
            if isinstance(module, MemoryBankModule) and module.size[0] > 0:
                out[f"{name}.bank"], out[f"{name}.bank_ptr"] = module.bank, module.bank_ptr
        return out


class TwoBranch(Method):
    """One backbone and one projector (``head``) for both views and an objective of the
    two projections (SimCLR, VICReg, Barlow Twins); the backbone is exported.

    Subclasses set :attr:`head` (a lightly head class taking ``(input, hidden, output)``)
    and implement :meth:`objective`.
    """

    head: type[nn.Module] = nn.Identity

    def __init__(self, backbone: nn.Module, cfg) -> None:
        super().__init__()
        heads = cfg.heads
        self.backbone = backbone
        self.projector = self.head(encoder_dim(backbone), heads.proj_hidden, heads.proj_out)
        self.spread_dim = heads.proj_out

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        z1 = self.projector(self.backbone(v1)).float()
        z2 = self.projector(self.backbone(v2)).float()
        return StepOutput(self.objective(z1, z2), {}, representation_std(z1))

    def online_parameters(self) -> nn.ModuleDict:
        return nn.ModuleDict({"backbone": self.backbone, "projector": self.projector})

    def export_encoder(self) -> nn.Module:
        return self.backbone


class MethodBuffers:
    """Owned helper of the pretraining module: checkpoints :meth:`Method.extra_state`
    (lightly's memory banks are ``persistent=False`` buffers, absent from
    ``state_dict``), so a resumed run has the same queue of negatives."""

    def __init__(self, method: Method) -> None:
        self.method = method

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: buf.detach().cpu().clone() for name, buf in self.method.extra_state().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        buffers = self.method.extra_state()
        unknown = set(state) - set(buffers)
        if unknown:
            raise ValueError(f"checkpoint has method buffers this method lacks: {sorted(unknown)}")
        with torch.no_grad():
            for name, value in state.items():
                buffers[name].copy_(value.to(buffers[name].device))
