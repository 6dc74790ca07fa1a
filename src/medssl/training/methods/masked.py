"""Masked image modelling for CNNs with the fine-tuning U-Net: ``mim``.

A masked-input U-Net (simpler than SparK's sparse convolutions, Tian et al. 2023):
the slice is cut into ``mask_patch``-pixel patches, ``mask_ratio`` of them are set to 0
(the slices are z-scored, so 0 is the mean intensity), and the U-Net (the same
architecture the study fine-tunes, one output channel) reconstructs the slice. The loss
is MAE's (He et al. 2022, eq. in §3 and ``norm_pix_loss``): the mean squared error per
patch, on each patch normalised by its own mean and variance when ``norm_pix``,
averaged over the masked patches only. Encoder *and* decoder are pretrained and
exported (fine-tuning can start from both: ``finetune --init-decoder``).

The masks are drawn from a generator seeded by ``(seed, rank, step)``, so a resumed
run draws the same masks as an uninterrupted one. Only the first view of each pair is
used.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.configs import PretrainConfig
from medssl.models.encoders import create_encoder
from medssl.models.unet import build_unet, encoder_of
from medssl.training.methods.base import Method, StepContext, StepOutput


def patch_mask(
    batch: int, grid: tuple[int, int], ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """``(B, gh, gw)`` bool, True = masked: exactly ``round(ratio · gh·gw)`` patches of
    each sample, chosen uniformly (MAE's per-sample random shuffle)."""
    gh, gw = grid
    n = gh * gw
    k = min(n, max(1, round(ratio * n)))
    order = torch.rand(batch, n, generator=generator).argsort(dim=1)
    mask = torch.zeros(batch, n, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], True)
    return mask.view(batch, gh, gw)


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, 1, H, W)`` → ``(B, H/p · W/p, p²)`` (row-major patches)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def masked_reconstruction_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    patch: int,
    norm_pix: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """MAE's loss: per-patch MSE averaged over the masked patches.

    Args:
        prediction, target: ``(B, 1, H, W)``.
        mask: ``(B, H/p, W/p)`` bool, True where the input was masked.
        patch: patch side ``p``.
        norm_pix: normalise each target patch by its mean and (unbiased) variance + eps.
    """
    pred = patchify(prediction.float(), patch)
    tgt = patchify(target.float(), patch)
    if norm_pix:
        mean, var = tgt.mean(dim=-1, keepdim=True), tgt.var(dim=-1, keepdim=True)
        tgt = (tgt - mean) / (var + eps) ** 0.5
    per_patch = ((pred - tgt) ** 2).mean(dim=-1)
    m = mask.flatten(1).to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum().clamp_min(1.0)


class MaskedImageModelling(Method):
    name = "mim"

    def __init__(self, unet: nn.Module, cfg: PretrainConfig) -> None:
        super().__init__()
        obj = cfg.objective
        if cfg.crop % obj.mask_patch:
            raise ValueError(f"crop {cfg.crop} is not a multiple of mask_patch {obj.mask_patch}")
        self.unet = unet
        self.arch = cfg.arch
        self.ratio, self.patch, self.norm_pix = obj.mask_ratio, obj.mask_patch, obj.norm_pix
        self.seed = cfg.runtime.seed

    def masks(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """The step's patch masks (same for the same seed, rank and step)."""
        gen = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + ctx.rank) * 1_000_033 + ctx.step
        )
        grid = (x.shape[-2] // self.patch, x.shape[-1] // self.patch)
        return patch_mask(x.shape[0], grid, self.ratio, gen).to(x.device, non_blocking=True)

    def step(self, v1: torch.Tensor, v2: torch.Tensor, ctx: StepContext) -> StepOutput:
        mask = self.masks(v1, ctx)
        pixels = mask.repeat_interleave(self.patch, 1).repeat_interleave(self.patch, 2)
        masked = v1.masked_fill(pixels.unsqueeze(1), 0.0)
        recon = self.unet(masked)
        loss = masked_reconstruction_loss(recon, v1, mask, self.patch, self.norm_pix)
        visible = 1.0 - mask.float().mean()
        return StepOutput(loss, {"visible_fraction": visible.detach()}, None)

    def online_parameters(self) -> nn.ModuleDict:
        return nn.ModuleDict({"unet": self.unet})

    def export_encoder(self) -> nn.Module:
        """A timm encoder (``num_classes=0``) holding the U-Net encoder's weights; every
        key must match (``strict``)."""
        encoder = create_encoder(self.arch, in_chans=1)
        encoder.load_state_dict(encoder_of(self.unet).state_dict(), strict=True)
        return encoder

    def export_decoder(self) -> nn.Module:
        return self.unet.decoder


def build_mim_unet(cfg: PretrainConfig) -> nn.Module:
    """The reconstruction U-Net: the fine-tuning U-Net (``objective.decoder_channels``)
    with one output channel."""
    return build_unet(cfg.arch, 1, cfg.objective.decoder_channels)
