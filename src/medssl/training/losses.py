"""Loss functions as pure functions."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's normalised mean squared error, ``2 − 2·cos(p, z)``, averaged over the batch.

    Grill et al., "Bootstrap your own latent", NeurIPS 2020, eq. 2.

    Args:
        prediction: ``(B, D)`` online predictions.
        target: ``(B, D)`` target projections (gradient is stopped here).

    Returns:
        Scalar in ``[0, 4]``.
    """
    p = F.normalize(prediction.float(), dim=-1)
    z = F.normalize(target.detach().float(), dim=-1)
    return (2 - 2 * (p * z).sum(dim=-1)).mean()


def symmetric_byol_loss(
    p1: torch.Tensor,
    p2: torch.Tensor,
    z1: torch.Tensor,
    z2: torch.Tensor,
    reduction: Literal["sum", "mean"] = "sum",
) -> torch.Tensor:
    """Symmetrised BYOL loss: view 1's prediction of view 2's target and vice versa.

    ``sum`` (solo-learn's ``BYOL.training_step``, the study's; range ``[0, 8]``) adds the
    two directions; ``mean`` averages them (range ``[0, 4]``, half the gradient).
    """
    total = byol_loss(p1, z2) + byol_loss(p2, z1)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return 0.5 * total
    raise ValueError(f"unknown reduction {reduction!r}")


def representation_std(z: torch.Tensor) -> torch.Tensor:
    """Collapse monitor: mean over dimensions of the batch std of L2-normalised vectors.

    A healthy ``D``-dimensional representation gives about ``1/√D``; a collapsed one
    (every sample mapped to the same vector) gives 0.
    """
    return F.normalize(z.detach().float(), dim=-1).std(dim=0).mean()
