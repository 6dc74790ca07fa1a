"""Lightning callbacks: atomic resume checkpoints, pre-emption, encoder export, throughput."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from medssl.artifacts.atomic import atomic_write
from medssl.artifacts.rundir import LAST_CKPT, PREVIOUS_CKPT, RunDir
from medssl.errors import Preempted

log = logging.getLogger(__name__)

#: re-exported: the checkpoint file names are the artifacts layer's
__all__ = [
    "LAST_CKPT",
    "PREVIOUS_CKPT",
    "AtomicCheckpoint",
    "EncoderExport",
    "PreemptionSaver",
    "Throughput",
    "checkpoint_problem",
    "parameters_finite",
]


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint file cannot be resumed from, or ``None`` when it is intact.

    A torch checkpoint is a zip archive; every member's CRC is checked, which catches
    truncation and flipped bytes without unpickling anything.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                return f"checksum mismatch in {bad}"
            if not any(n.endswith("data.pkl") for n in zf.namelist()):
                return "not a torch checkpoint"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"unreadable: {exc}"
    return None


def parameters_finite(module: torch.nn.Module) -> bool:
    """True when every floating-point parameter and buffer of ``module`` is finite."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    if not tensors:
        return True
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
    return bool(torch.isfinite(torch.stack(norms)).all())


class AtomicCheckpoint(Callback):
    """Write ``checkpoints/last.ckpt`` every ``every_steps`` steps and after the last
    batch of each epoch.

    Each write goes through :func:`~medssl.artifacts.atomic.atomic_write` (a temporary
    file, fsynced and renamed over the previous one); the checkpoint it replaces is
    kept as ``previous.ckpt``. So a kill during the write, a full disk (the write fails:
    the error is logged, training goes on and the next interval tries again) or a
    later-damaged ``last.ckpt`` always leaves a good checkpoint to resume from. A model
    with a non-finite parameter is never saved.
    """

    def __init__(self, folder: Path, every_steps: int = 0, val_every_steps: int = 0) -> None:
        self.folder = Path(folder)
        self.every_steps = every_steps
        self.val_every_steps = val_every_steps
        self.failed_writes = 0
        self._saved_step: int | None = None
        self._after_validation = False

    def save(self, trainer: L.Trainer) -> bool:
        """Write the checkpoint now; ``False`` when it was refused or failed."""
        module = trainer.lightning_module
        if not parameters_finite(module):
            log.error(
                "step %d: the model has non-finite parameters; %s keeps the last good checkpoint",
                trainer.global_step,
                self.folder / LAST_CKPT,
            )
            return False
        last = self.folder / LAST_CKPT
        ok = True
        try:
            if trainer.is_global_zero:
                with atomic_write(last) as tmp:
                    trainer.save_checkpoint(tmp)
                    self._rotate(trainer.global_step)
                self._saved_step = trainer.global_step
            else:
                trainer.save_checkpoint(last)  # a collective: only rank 0 writes
        except OSError as exc:
            ok = False
            self.failed_writes += 1
            log.error(
                "step %d: could not write %s (%s); the previous checkpoint is kept",
                trainer.global_step,
                self.folder / LAST_CKPT,
                exc.strerror or exc,
            )
        trainer.strategy.barrier()
        return ok

    def _rotate(self, step: int) -> None:
        """Keep the checkpoint about to be replaced as ``previous.ckpt`` when it is of an
        earlier step and intact (checked once per process for a file written before)."""
        last = self.folder / LAST_CKPT
        if not last.exists() or self._saved_step == step:
            return
        if self._saved_step is None and checkpoint_problem(last) is not None:
            log.warning("%s is damaged; not keeping it as %s", last, PREVIOUS_CKPT)
            return
        os.replace(last, self.folder / PREVIOUS_CKPT)

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        # The last batch of an epoch is saved here, not in ``on_train_epoch_end``: Lightning
        # restores a checkpoint written inside the epoch-end hooks as an unfinished epoch,
        # which replays data; a batch-end checkpoint resumes exactly.
        # A step that is followed by a validation is saved after it (on_validation_end), so
        # that a resumed run does not skip that learning-curve point.
        last_of_epoch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if last_of_epoch or (self.every_steps and trainer.global_step % self.every_steps == 0):
            batches = trainer.fit_loop.epoch_loop.total_batch_idx + 1
            if self.val_every_steps and batches % self.val_every_steps == 0:
                self._after_validation = True
            else:
                self.save(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._after_validation and not trainer.sanity_checking:
            self._after_validation = False
            self.save(trainer)


class PreemptionSaver(Callback):
    """On SIGTERM or SIGUSR1 (SLURM pre-emption, ``scancel --signal``), finish the
    current step, write the checkpoint and stop training.

    The handlers are installed for the duration of training (main thread only) and
    the previous ones restored afterwards. ``signame`` tells the caller that the run
    stopped early (it must not be reported as finished).
    """

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self, checkpoint: AtomicCheckpoint) -> None:
        self.checkpoint = checkpoint
        self.signame: str | None = None
        self.step: int | None = None
        self._received: str | None = None
        self._previous: dict[int, object] = {}

    def _handler(self, signum: int, frame) -> None:
        self._received = signal.Signals(signum).name

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # installed after Lightning's own signal handlers (which would raise
        # SIGTERMException and end the process before a clean save), replacing them
        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.SIGNALS:
            sig = getattr(signal, name)
            self._previous[sig] = signal.signal(sig, self._handler)

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self._received is None or self.signame is not None:
            return
        self.signame, self.step = self._received, trainer.global_step
        log.warning("%s received: saving at step %d and stopping", self.signame, self.step)
        self.checkpoint.save(trainer)
        trainer.should_stop = True

    def raise_if_preempted(self, run_dir: Path) -> None:
        """After ``trainer.fit``: raise :class:`~medssl.errors.Preempted` when a signal
        stopped the run (the checkpoint was saved at the reported step)."""
        if self.signame is not None:
            raise Preempted(run_dir, self.step, self.signame)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class EncoderExport(Callback):
    """Save an encoder (and, for methods that train one, the U-Net decoder) after every
    epoch and before training (epoch 0).

    Args:
        run: the run directory (:meth:`RunDir.encoder_epoch`, :attr:`RunDir.encoder_last`,
            :meth:`RunDir.decoder_epoch`, :attr:`RunDir.decoder_last`).
        get_encoder: returns the module to export (for BYOL, the target backbone).
        save: ``save(module, path)`` writing an encoder file (atomically).
        get_decoder: returns the decoder to export, or ``None`` (no decoder).
        save_decoder: ``save_decoder(module, path)`` writing a decoder file.
    """

    def __init__(
        self,
        run: RunDir | Path,
        get_encoder: Callable[[L.LightningModule], torch.nn.Module],
        save: Callable[[torch.nn.Module, Path], None],
        get_decoder: Callable[[L.LightningModule], torch.nn.Module | None] | None = None,
        save_decoder: Callable[[torch.nn.Module, Path], None] | None = None,
    ) -> None:
        self.run = run if isinstance(run, RunDir) else RunDir(run)
        self.get_encoder = get_encoder
        self.save = save
        self.get_decoder = get_decoder
        self.save_decoder = save_decoder

    def epoch_path(self, epoch: int) -> Path:
        """The file of the encoder after ``epoch`` epochs."""
        return self.run.encoder_epoch(epoch)

    def export(self, module: L.LightningModule, epoch: int) -> None:
        """Write the encoder (and decoder) after ``epoch`` epochs, and as the latest."""
        decoder = self.get_decoder(module) if self.get_decoder else None
        if decoder is not None and self.save_decoder is not None:
            self.save_decoder(decoder, self.run.decoder_epoch(epoch))
            self.save_decoder(decoder, self.run.decoder_last)
        encoder = self.get_encoder(module)
        self.save(encoder, self.epoch_path(epoch))
        self.save(encoder, self.run.encoder_last)

    def _export(self, trainer: L.Trainer, module: L.LightningModule, epoch: int) -> None:
        if trainer.is_global_zero:
            self.export(module, epoch)

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


class FirstStepClock(Callback):
    """Time this process's first training step, data transfer included: with
    ``runtime.compile`` it holds the compilation, so a run reports what compiling cost
    (the device is synchronised once, at the end of that step)."""

    def __init__(self) -> None:
        self._t0: float | None = None
        #: seconds of the first step; ``None`` until it has run
        self.seconds: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self.seconds is None and self._t0 is not None:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            self.seconds = time.perf_counter() - self._t0
