"""Lightning callbacks: atomic resume checkpoints, per-epoch encoder export, throughput."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from medssl.training.runtime import atomic_replace

log = logging.getLogger(__name__)

LAST_CKPT = "last.ckpt"


class AtomicCheckpoint(Callback):
    """Write ``checkpoints/last.ckpt`` every ``every_steps`` steps and at each epoch end.

    Each write goes to a temporary file that is renamed over the previous one, so a
    kill during the write leaves the last good checkpoint intact.
    """

    def __init__(self, folder: Path, every_steps: int = 0) -> None:
        self.folder = Path(folder)
        self.every_steps = every_steps

    def _save(self, trainer: L.Trainer) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{LAST_CKPT}.tmp"
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            atomic_replace(tmp, self.folder / LAST_CKPT)
        trainer.strategy.barrier()

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.every_steps and trainer.global_step % self.every_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)


class EncoderExport(Callback):
    """Save an encoder after every epoch (and before training: epoch 0).

    Args:
        folder: run directory.
        get_encoder: returns the module to export (for BYOL, the target backbone).
        save: ``save(module, path)`` writing an encoder file (atomically).
    """

    def __init__(
        self,
        folder: Path,
        get_encoder: Callable[[L.LightningModule], torch.nn.Module],
        save: Callable[[torch.nn.Module, Path], None],
    ) -> None:
        self.folder = Path(folder)
        self.get_encoder = get_encoder
        self.save = save

    def _export(self, trainer: L.Trainer, module: L.LightningModule, epoch: int) -> None:
        if not trainer.is_global_zero:
            return
        encoder = self.get_encoder(module)
        self.save(encoder, self.folder / f"encoder_epoch_{epoch:03d}.safetensors")
        self.save(encoder, self.folder / "encoder_last.safetensors")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == 0:
            self._export(trainer, pl_module, 0)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._export(trainer, pl_module, trainer.current_epoch + 1)


class Throughput(Callback):
    """Log samples per second over each logging interval, without syncing the device
    inside the step (the clock is read once per interval, after Lightning's own sync
    for logging)."""

    def __init__(self, samples_per_step: int, every_steps: int) -> None:
        self.samples_per_step = samples_per_step
        self.every_steps = max(1, every_steps)
        self._t0: float | None = None
        self._step0 = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        step = trainer.global_step
        if self._t0 is None:
            self._t0, self._step0 = time.perf_counter(), step
            return
        if step - self._step0 >= self.every_steps:
            now = time.perf_counter()
            rate = (step - self._step0) * self.samples_per_step / (now - self._t0)
            pl_module.log("samples_per_s", rate, on_step=True, on_epoch=False)
            self._t0, self._step0 = now, step
