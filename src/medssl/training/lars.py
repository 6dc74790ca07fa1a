"""LARS optimiser (You et al. 2017) as used by solo-learn for BYOL.

Differs from ``lightly.utils.lars.LARS`` in two ways the study's recipe needs:
learning-rate clipping (the trust ratio may not raise a layer's rate above the
global one) and exclusion by parameter group flag rather than by zero weight decay.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer


def lars_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split parameters: biases and normalisation weights get no weight decay and no
    LARS adaptation (``lars_exclude=True``); everything else gets both."""
    decay, exclude = [], []
    for _name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (exclude if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "lars_exclude": False},
        {"params": exclude, "weight_decay": 0.0, "lars_exclude": True},
    ]


class LARS(Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling, as in solo-learn.

    For a non-excluded parameter ``w`` with gradient ``g`` and weight decay ``wd``:
    ``r = η·‖w‖ / (‖g‖ + wd·‖w‖ + ε)``; with clipping ``r ← min(r / lr, 1)``, so the
    layer's effective rate ``lr·r`` never exceeds ``lr``; without, the raw ``r``
    multiplies the step. Then ``g ← r·(g + wd·w)`` and heavy-ball momentum
    ``v ← μ·v + g``, ``w ← w − lr·v``. Excluded parameters (biases, norm weights) get
    plain momentum SGD without weight decay.

    Args:
        params: parameters or groups (groups may set ``lars_exclude``).
        lr: learning rate.
        momentum: momentum factor.
        weight_decay: default weight decay.
        eta: trust coefficient η.
        clip_lr: clip the adapted rate to the global one.
        eps: numerical guard.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.02,
        clip_lr: bool = True,
        eps: float = 1e-8,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "clip_lr": clip_lr,
            "eps": eps,
            "lars_exclude": False,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter, vectorised per group with ``torch._foreach_*``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if not group["lars_exclude"]:
                ratios = self._trust_ratios(params, grads, group)
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
                torch._foreach_mul_(grads, list(ratios.unbind()))
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:  # first step: v = 0·μ + g = g (solo-learn)
                    state["momentum_buffer"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
                bufs.append(state["momentum_buffer"])
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_add_(bufs, grads)
            torch._foreach_add_(params, bufs, alpha=-group["lr"])
        return loss

    @staticmethod
    def _trust_ratios(params: list, grads: list, group: dict) -> torch.Tensor:
        w_norm = torch.stack(torch._foreach_norm(params))
        g_norm = torch.stack(torch._foreach_norm(grads))
        ratio = group["eta"] * w_norm / (g_norm + group["weight_decay"] * w_norm + group["eps"])
        if group["clip_lr"]:
            ratio = (ratio / group["lr"]).clamp(max=1.0)
        return torch.where((w_norm > 0) & (g_norm > 0), ratio, torch.ones_like(ratio))
