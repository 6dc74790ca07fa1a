"""EMA copies of networks (lightly's ``deactivate_requires_grad`` and fused
``update_momentum``), shared by the methods with a target/teacher/key network."""

from __future__ import annotations

import copy

import torch
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import nn


def ema_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` (the EMA network starts equal to the online one)."""
    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


@torch.no_grad()
def ema_update(pairs: list[tuple[nn.Module, nn.Module]], tau: float) -> None:
    """``θ_target ← τ·θ_target + (1 − τ)·θ_online`` for each ``(online, target)``."""
    for online, target in pairs:
        update_momentum(online, target, tau)
