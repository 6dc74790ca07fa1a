"""The U-Net fine-tuning LightningModule: loss, Adam, schedule, validation curve.

The module owns its helpers (composition, not mixins), each with one checkpoint key
under ``checkpoint["medssl"]`` (:mod:`medssl.training.state`): ``position``
(:class:`~medssl.training.sampling.ResumePosition`), ``finite_loss``
(:class:`~medssl.training.guards.FiniteLoss`) and ``best``
(:class:`~medssl.training.guards.BestScore`); :class:`~medssl.training.device_augment.DeviceAugment`
makes the pixels on the device and :class:`~medssl.training.validation.ValidationScores`
accumulates and synchronises the validation scores across ranks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import lightning as L
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from medssl.artifacts.rundir import RunDir
from medssl.configs import FinetuneConfig, world_size
from medssl.data.batch_augment import SliceBank
from medssl.data.datasets import LabelledSlices
from medssl.evaluation.metrics import soft_jaccard_loss_from_logits
from medssl.hardware import compile_choice, resolve_precision
from medssl.models.unet import encoder_of, set_encoder_trainable
from medssl.training.device_augment import DeviceAugment
from medssl.training.guards import BestScore, FiniteLoss
from medssl.training.sampling import ResumePosition, resumable_loader
from medssl.training.schedules import linear_warmup_cosine
from medssl.training.state import load_states, save_states
from medssl.training.validation import ValidationScores, VolumeShard


def finetune_lr_factor(cfg: FinetuneConfig, step: int) -> float:
    """Learning-rate multiplier at optimisation ``step``: pl_bolts'
    ``LinearWarmupCosineAnnealingLR`` advanced once every ``cfg.lr_interval`` steps
    (the study: once per 7-step epoch, 10 warmup epochs from 1e-6, 150 epochs)."""
    interval = max(1, cfg.lr_interval)
    return linear_warmup_cosine(
        step // interval,
        cfg.warmup_steps // interval,
        -(-cfg.steps // interval),
        start_ratio=cfg.warmup_start_lr / cfg.lr,
    )


def segmentation_loss(name: str, classes: tuple[int, ...]):
    """Loss on ``(B, C, H, W)`` logits and ``(B, H, W)`` labels.

    ``jaccard``: the study's smp ``JaccardLoss(mode="multiclass")`` over every class,
    background included (``classes=None``); ``jaccard_fg``: the soft Jaccard over the
    foreground ``classes`` only; ``dice`` and ``dice_ce`` over ``classes``.
    """
    if name == "jaccard":
        jaccard = smp.losses.JaccardLoss(mode="multiclass", classes=None, from_logits=True)
        return lambda logits, y: jaccard(logits.float(), y)
    if name == "jaccard_fg":
        return lambda logits, y: soft_jaccard_loss_from_logits(logits, y, classes)
    dice = smp.losses.DiceLoss(mode="multiclass", classes=list(classes), from_logits=True)
    if name == "dice":
        return dice
    if name == "dice_ce":
        return lambda logits, y: dice(logits, y) + F.cross_entropy(logits.float(), y)
    raise ValueError(f"unknown loss {name!r}")


class SegmentationModule(L.LightningModule):
    """Fine-tunes a U-Net for a fixed number of steps and records a learning curve.

    Args:
        cfg: run config.
        unet: the network (encoder already initialised).
        train_set: labelled training slices of the budget (augmented crops).
        val_set: validation volumes (whole slices, padded, deterministic); each rank of
            a DDP run validates its own share of them.
        num_classes: classes including background.
        run_dir: where rank 0 writes the curve and the best model.
        bank: the budget's slices and labels in memory, for ``runtime.augment = "device"``
            (``train_set`` then yields only the random draws).
        label_names: ``{value: name}`` of the dataset's labels (the curve's columns).
    """

    def __init__(
        self,
        cfg: FinetuneConfig,
        unet: torch.nn.Module,
        train_set: LabelledSlices | Dataset,
        val_set: Dataset | list,
        num_classes: int,
        run_dir: Path | RunDir,
        bank: SliceBank | None = None,
        label_names: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__()
        self.cfg, self.unet = cfg, unet
        self.train_set, self.val_set = train_set, val_set
        self.classes = tuple(range(1, num_classes))
        self.loss_fn = segmentation_loss(cfg.loss, self.classes)
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.world = world_size(cfg.runtime)
        self.resume_position = ResumePosition()
        self.device_augment = DeviceAugment(bank, cfg.crop)
        self.finite_loss = FiniteLoss(cfg.max_bad_steps)
        self.best = BestScore()
        self.validation = ValidationScores(self.classes, label_names)
        if cfg.runtime.channels_last:
            self.unet.to(memory_format=torch.channels_last)
        if compile_choice(cfg.runtime, "finetune", cfg.steps)[0]:
            self.unet.compile()

    @property
    def skipped_steps(self) -> int:
        """Training steps skipped for a non-finite loss."""
        return self.finite_loss.skipped_steps

    def train_dataloader(self) -> DataLoader:
        rt, cfg = self.cfg.runtime, self.cfg
        return resumable_loader(
            self.train_set,
            cfg.batch_size,
            cfg.budget_seed,
            self.global_rank,
            self.world,
            rt.num_workers,
            self.resume_position.position,
            num_samples=cfg.steps * cfg.batch_size * self.world,
        )

    def val_dataloader(self) -> DataLoader:
        shard = VolumeShard(self.val_set, self.global_rank, self.trainer.world_size)
        return DataLoader(shard, batch_size=None, num_workers=min(1, self.cfg.runtime.num_workers))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        return self.device_augment(batch, self.device)

    def configure_optimizers(self):
        params = [p for p in self.unet.parameters()]
        # fused Adam (one kernel for all parameters) on GPUs only: on CPUs it coincided with
        # intermittent last-bit differences between a run and its resume, later traced to
        # MKL's non-reproducible defaults (see docs/reliability.md; not re-tried since), and
        # not with fp16's GradScaler, whose unscaling Lightning must do before clipping
        fused = self.device.type == "cuda" and resolve_precision(self.cfg.runtime) != "16-mixed"
        opt = torch.optim.Adam(params, lr=self.cfg.lr, fused=fused)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: finetune_lr_factor(self.cfg, s))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        """Clip by global norm. Without a GradScaler (fp32, bf16) the gradients are
        already unscaled, so the fused optimiser needs no help from Lightning."""
        if not self.cfg.grad_clip:
            return
        if optimizer.defaults.get("fused"):
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        else:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def _encoder_frozen(self) -> bool:
        return self.cfg.freeze_encoder or self.global_step < self.cfg.freeze_encoder_steps

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        frozen = self._encoder_frozen()
        set_encoder_trainable(self.unet, not frozen)
        encoder_of(self.unet).train(not frozen)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return (
            x.contiguous(memory_format=torch.channels_last) if self.cfg.runtime.channels_last else x
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        self.finite_loss.snapshot(self)
        logits = self.unet(self._prep(batch["image"]))
        loss = self.finite_loss.check(
            self.loss_fn(logits.float(), batch["label"]), self, self.global_step
        )
        if loss is None:
            return None
        self.log("loss", loss.detach(), on_step=True, prog_bar=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"], on_step=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        top, left, h, w = batch["valid"].tolist()
        logits = self.unet(self._prep(batch["image"]))[..., top : top + h, left : left + w]
        if batch.get("scored", True):
            label = batch["label"]
            self.validation.update(logits.argmax(1), label, self.loss_fn(logits.float(), label))

    def _scheduled(self, step: int, every: int) -> bool:
        """A validation at ``step`` is a curve point every ``every`` steps and at the end."""
        return step >= self.cfg.steps or not every or step % every == 0

    def on_validation_epoch_end(self) -> None:
        if not self._scheduled(int(self.global_step), self.cfg.val_every_steps):
            # an unscheduled validation (Lightning validates when a run stops early, e.g.
            # on pre-emption): not a learning-curve point, it would not be replayed on resume
            self.validation.reset()
            return
        self.validation.sync(self.device)  # every rank: the scores of all volumes
        scores = self.validation.compute()
        self.validation.reset()
        row = {"step": int(self.global_step), **scores}
        self.log("val_iou", scores["slice_iou/mean"], prog_bar=True)
        if self.trainer.sanity_checking:
            return
        selectable = self._scheduled(int(self.global_step), self.cfg.best_every_steps)
        better = selectable and self.best.offer(scores["slice_iou/mean"])
        if self.trainer.is_global_zero:
            self.run.append_curve(row)
            if better:
                self.run.save_best(
                    self._best_state(), {"format": "medssl-unet", "arch": self.cfg.arch}, row
                )

    def _best_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().float().contiguous().cpu() if v.is_floating_point() else v.cpu()
            for k, v in self.unet.state_dict().items()
        }

    def _states(self) -> dict:
        return {
            "position": self.resume_position,
            "finite_loss": self.finite_loss,
            "best": self.best,
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.resume_position.capture(self.trainer)
        save_states(checkpoint, self._states())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        load_states(checkpoint, self._states())
