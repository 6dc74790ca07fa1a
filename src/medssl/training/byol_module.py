"""The BYOL LightningModule: one training step, the EMA update, LARS and the schedule.

The module owns its helpers (composition, not mixins), each with one checkpoint key
under ``checkpoint["medssl"]`` (:mod:`medssl.training.state`): ``position``
(:class:`~medssl.training.sampling.ResumePosition`), ``finite_loss``
(:class:`~medssl.training.guards.FiniteLoss`) and ``collapse``
(:class:`~medssl.training.guards.CollapseMonitor`); views are made on the device by
:class:`~medssl.training.device_augment.DeviceAugment`.
"""

from __future__ import annotations

import math

import lightning as L
import torch
from torch.utils.data import DataLoader

from medssl.configs import PretrainConfig, world_size
from medssl.data.batch_augment import SliceBank
from medssl.data.datasets import TwoViews
from medssl.models.byol import BYOL
from medssl.training.device_augment import DeviceAugment
from medssl.training.guards import CollapseMonitor, FiniteLoss
from medssl.training.lars import LARS, lars_param_groups
from medssl.training.losses import representation_std, symmetric_byol_loss
from medssl.training.sampling import ResumePosition, resumable_loader
from medssl.training.schedules import linear_warmup_cosine, momentum_schedule
from medssl.training.state import load_states, save_states


class BYOLModule(L.LightningModule):
    """BYOL pretraining of ``byol.backbone`` on two-view batches.

    Args:
        cfg: the run's config.
        byol: online and target networks (already initialised from the weight source).
        dataset: two-view dataset of the unlabelled pool (with ``params_only``, the
            views are made on the device from ``bank``).
        bank: the pool's slices in memory, for ``runtime.augment = "device"``.
    """

    def __init__(
        self, cfg: PretrainConfig, byol: BYOL, dataset: TwoViews, bank: SliceBank | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.byol = byol
        self.dataset = dataset
        self.world = world_size(cfg.runtime)
        self.steps_per_epoch = max(1, len(dataset) // (cfg.batch_size * self.world))
        planned = cfg.epochs * self.steps_per_epoch
        #: the schedules (lr, τ) span these steps; ``stop_epoch`` ends training earlier
        self.schedule_steps = min(planned, cfg.max_steps) if cfg.max_steps else planned
        self.total_steps = min(self.schedule_steps, cfg.run_epochs * self.steps_per_epoch)
        self.collapse = CollapseMonitor(
            cfg.heads.proj_out, cfg.collapse_fraction, cfg.collapse_patience
        )
        self.resume_position = ResumePosition()
        self.device_augment = DeviceAugment(bank, cfg.crop)
        self.finite_loss = FiniteLoss(cfg.max_bad_steps)
        if cfg.runtime.channels_last:
            self.byol.to(memory_format=torch.channels_last)
        if cfg.runtime.compile:
            for net in (byol.backbone, byol.target_backbone, byol.projector, byol.predictor):
                net.compile()

    # --- data -----------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        rt = self.cfg.runtime
        return resumable_loader(
            self.dataset,
            self.cfg.batch_size,
            rt.seed,
            self.global_rank,
            self.world,
            rt.num_workers,
            self.resume_position.position,
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        return self.device_augment(batch, self.device)

    @property
    def skipped_steps(self) -> int:
        """Training steps skipped for a non-finite loss."""
        return self.finite_loss.skipped_steps

    # --- optimisation ---------------------------------------------------------------
    @property
    def lr(self) -> float:
        """Base LR scaled by the total batch (solo-learn: ``base_lr · B_total / 256``)."""
        return self.cfg.base_lr * self.cfg.batch_size * self.world / 256

    def configure_optimizers(self):
        cfg = self.cfg
        groups = lars_param_groups(self.byol.online_parameters(), cfg.weight_decay)
        opt = LARS(
            groups, lr=self.lr, momentum=cfg.momentum, eta=cfg.lars_eta, clip_lr=cfg.lars_clip
        )
        warmup = math.ceil(cfg.warmup_epochs * self.steps_per_epoch)
        total, start = self.schedule_steps, cfg.warmup_start_lr / self.lr
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: linear_warmup_cosine(step, warmup, total, start_ratio=start)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # --- steps ----------------------------------------------------------------------
    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return (
            x.contiguous(memory_format=torch.channels_last) if self.cfg.runtime.channels_last else x
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        self.finite_loss.snapshot(self)
        v1, v2 = self._prep(batch["view1"]), self._prep(batch["view2"])
        z1, p1 = self.byol.forward_online(v1)
        _z2, p2 = self.byol.forward_online(v2)
        t1, t2 = self.byol.forward_target(v1), self.byol.forward_target(v2)
        loss = symmetric_byol_loss(p1, p2, t1, t2, self.cfg.loss_reduction)
        loss = self.finite_loss.check(loss, self, self.global_step)
        if loss is None:
            return None
        spread = representation_std(z1)
        self.collapse.update(float(spread), self.global_step)
        self.log_dict(
            {
                "loss": loss.detach(),
                "tau": momentum_schedule(
                    self.global_step, self.schedule_steps, self.cfg.tau_base, self.cfg.tau_end
                ),
                "lr": self.optimizers().param_groups[0]["lr"],
                "online_std": spread,
            },
            on_step=True,
            on_epoch=False,
            prog_bar=False,
        )
        self.log(
            "train_loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, sync_dist=True
        )
        return loss

    def _states(self) -> dict:
        return {
            "position": self.resume_position,
            "finite_loss": self.finite_loss,
            "collapse": self.collapse,
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.resume_position.capture(self.trainer)
        save_states(checkpoint, self._states())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        load_states(checkpoint, self._states())

    def optimizer_step(self, *args, **kwargs) -> None:
        """Optimiser step, then the target EMA update for the same step.

        Doing the EMA here (not in ``on_train_batch_end``) puts it inside the step, so
        a checkpoint written by a callback after the step already contains it.
        """
        step = self.global_step
        super().optimizer_step(*args, **kwargs)
        self.byol.update_target(
            momentum_schedule(step, self.schedule_steps, self.cfg.tau_base, self.cfg.tau_end)
        )
