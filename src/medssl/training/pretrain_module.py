"""The pretraining LightningModule: one training step of any registry method
(:mod:`medssl.training.methods`), the EMA update, the optimiser and the schedule.

The module owns its helpers (composition, not mixins), each with one checkpoint key
under ``checkpoint["medssl"]`` (:mod:`medssl.training.state`): ``position``
(:class:`~medssl.training.sampling.ResumePosition`), ``finite_loss``
(:class:`~medssl.training.guards.FiniteLoss`), ``collapse``
(:class:`~medssl.training.guards.CollapseMonitor`) and ``method_buffers``
(:class:`~medssl.training.methods.MethodBuffers`: memory queues); views are made on the device by
:class:`~medssl.training.device_augment.DeviceAugment`.
"""

from __future__ import annotations

import math

import lightning as L
import torch

from medssl.configs import PretrainConfig, world_size
from medssl.data.batch_augment import SliceBank
from medssl.data.datasets import TwoViews
from medssl.hardware import compile_choice
from medssl.training.device_augment import DeviceAugment
from medssl.training.guards import CollapseMonitor, FiniteLoss
from medssl.training.lars import LARS, lars_param_groups
from medssl.training.methods import Method, MethodBuffers, StepContext
from medssl.training.sampling import EpochStream, ResumePosition, epoch_stream
from medssl.training.schedules import linear_warmup_cosine, momentum_schedule
from medssl.training.state import load_states, save_states

#: state-dict prefix of the networks (``byol.`` before the method registry)
NET_PREFIX, LEGACY_PREFIX = "method.", "byol."


class PretrainModule(L.LightningModule):
    """Self-supervised pretraining of ``method``'s networks on two-view batches.

    Args:
        cfg: the run's config.
        method: the method's networks and loss (already initialised from the weight
            source).
        dataset: two-view dataset of the unlabelled pool (with ``params_only``, the
            views are made on the device from ``bank``).
        bank: the pool's slices in memory, for ``runtime.augment = "device"``.
    """

    def __init__(
        self, cfg: PretrainConfig, method: Method, dataset: TwoViews, bank: SliceBank | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.method = method
        self.dataset = dataset
        self.world = world_size(cfg.runtime)
        self.steps_per_epoch = max(1, len(dataset) // (cfg.batch_size * self.world))
        planned = cfg.epochs * self.steps_per_epoch
        #: the schedules (lr, τ) span these steps; ``stop_epoch`` ends training earlier
        self.schedule_steps = min(planned, cfg.max_steps) if cfg.max_steps else planned
        self.total_steps = min(self.schedule_steps, cfg.run_epochs * self.steps_per_epoch)
        self.collapse = CollapseMonitor(
            method.spread_dim, cfg.collapse_fraction, cfg.collapse_patience
        )
        self.method_buffers = MethodBuffers(method)
        self.resume_position = ResumePosition()
        self.device_augment = DeviceAugment(bank, cfg.crop)
        self._loader: EpochStream | None = None
        self.finite_loss = FiniteLoss(cfg.max_bad_steps)
        if cfg.runtime.channels_last:
            self.method.to(memory_format=torch.channels_last)
        #: whether the networks are compiled, and why (``runtime.compile``)
        self.compiled, self.compile_reason = compile_choice(
            cfg.runtime, "pretrain", self.total_steps
        )
        if self.compiled:
            self.method.compile_parts()

    # --- data -----------------------------------------------------------------------
    def train_dataloader(self) -> EpochStream:
        """The pool's batches; the workers run on across epochs (:class:`EpochStream`)."""
        rt = self.cfg.runtime
        if self._loader is not None:
            self._loader.close()
        self._loader = epoch_stream(
            self.dataset,
            self.cfg.batch_size,
            rt.seed,
            self.global_rank,
            self.world,
            rt.num_workers,
            self.resume_position.position,
        )
        return self._loader

    def on_train_end(self) -> None:
        if self._loader is not None:
            self._loader.close()

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

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg, params = self.cfg, self.method.online_parameters()
        if cfg.optimizer == "lars":
            groups = lars_param_groups(params, cfg.weight_decay)
            return LARS(
                groups, lr=self.lr, momentum=cfg.momentum, eta=cfg.lars_eta, clip_lr=cfg.lars_clip
            )
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(
                params.parameters(),
                lr=self.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
            )
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(
                params.parameters(), lr=self.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay
            )
        raise ValueError(f"unknown optimizer {cfg.optimizer!r} (lars, sgd, adamw)")

    def configure_optimizers(self):
        cfg = self.cfg
        opt = self._optimizer()
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
        ctx = StepContext(
            self.global_step, self.schedule_steps, self.steps_per_epoch, self.global_rank
        )
        out = self.method.step(v1, v2, ctx)
        loss = self.finite_loss.check(out.loss, self, self.global_step)
        if loss is None:
            return None
        logs = {"loss": loss.detach(), **out.logs}
        if self.method.has_target:
            logs["tau"] = momentum_schedule(
                self.global_step, self.schedule_steps, self.cfg.tau_base, self.cfg.tau_end
            )
        logs["lr"] = self.optimizers().param_groups[0]["lr"]
        if out.spread is not None:
            self.collapse.update(float(out.spread), self.global_step)
            logs["online_std"] = out.spread
        self.log_dict(
            logs,
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
            "method_buffers": self.method_buffers,
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.resume_position.capture(self.trainer)
        save_states(checkpoint, self._states())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the helpers; a checkpoint written before the method registry names
        the networks ``byol.*``: they are renamed ``method.*`` (the same tensors)."""
        state = checkpoint.get("state_dict") or {}
        if any(k.startswith(LEGACY_PREFIX) for k in state):
            checkpoint["state_dict"] = {
                (NET_PREFIX + k[len(LEGACY_PREFIX) :] if k.startswith(LEGACY_PREFIX) else k): v
                for k, v in state.items()
            }
        load_states(checkpoint, self._states())

    def optimizer_step(self, *args, **kwargs) -> None:
        """Optimiser step, then the EMA update of the method's target for the same step.

        Doing the EMA here (not in ``on_train_batch_end``) puts it inside the step, so
        a checkpoint written by a callback after the step already contains it.
        """
        step = self.global_step
        super().optimizer_step(*args, **kwargs)
        if self.method.has_target:
            self.method.update_target(
                momentum_schedule(step, self.schedule_steps, self.cfg.tau_base, self.cfg.tau_end)
            )
