"""Self-supervised pretraining runs: config → run directory with per-epoch encoders.

A kind of the run template (:mod:`medssl.training.run`): :class:`PretrainRun` supplies
the pretraining module of ``cfg.method`` (:mod:`medssl.training.methods`) over the
unlabelled pool, its trainer settings (epochs, step cap),
the encoder export and throughput callbacks and the raw facts of ``result.json``. Run
directory (file names: :class:`~medssl.artifacts.rundir.RunDir`)::

    config.yaml                      the resolved PretrainConfig
    split.json, pool.json            patient split and the size of the unlabelled pool
    init.json                        what the weight import matched (loud loading)
    encoder_epoch_000.safetensors    target encoder before training, then after each epoch
    encoder_last.safetensors         the latest of them
    decoder_epoch_NNN.safetensors    the U-Net decoder likewise (methods that train one: mim)
    decoder_last.safetensors
    checkpoints/last.ckpt            resume state (model, target, optimiser, schedule, step)
    logs/metrics.csv, logs/events.*  per-step loss, τ, lr, collapse monitor, throughput
    result.json                      written last: the run finished; holds the per-epoch
                                     mean loss and collapse monitor (``loss_per_epoch``),
                                     the fingerprint a fine-tune records when it
                                     loads the last encoder (``encoder_fingerprint``)
                                     and whether it compiled, why, and its first
                                     step's time (``compile``)

Specialist = ``init="random"``; hierarchical = ``init`` with ImageNet (or BYOL-ImageNet)
weights, then the method (BYOL in the study) on the target domain.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from medssl.artifacts.rundir import RunDir, read_csv_rows
from medssl.artifacts.split import Split
from medssl.artifacts.steplog import epoch_means
from medssl.configs import PretrainConfig
from medssl.data.batch_augment import SliceBank
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import TwoViews
from medssl.data.splits import unlabelled_pool
from medssl.models.safe_load import save_decoder
from medssl.models.unet import build_unet, load_unet_encoder
from medssl.models.weights import LoadReport, load_weights, save_encoder
from medssl.overrides import to_dict
from medssl.training.callbacks import EncoderExport, FirstStepClock, Throughput
from medssl.training.methods import build_method
from medssl.training.pretrain_module import PretrainModule
from medssl.training.run import RunKind, execute

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainResult:
    """Where a finished pretraining run put its outputs."""

    run_dir: Path
    encoders: list[Path]
    steps: int
    final_loss: float | None


def pretrain(
    cfg: PretrainConfig,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> PretrainResult:
    """Run (or resume) self-supervised pretraining (``cfg.method``) as configured.

    Args:
        cfg: run config (``data`` and ``out`` must be set).
        resume: continue from the run's checkpoint when present.
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks (after medssl's own).

    Raises:
        Preempted: SIGTERM/SIGUSR1 arrived; the checkpoint was saved at a step boundary.
        NumericalError: too many consecutive non-finite losses.
    """
    return execute(PretrainRun(cfg), resume, progress, callbacks)


def build_pretrain_module(
    cfg: PretrainConfig, cache: SliceCache, pool: list[int]
) -> tuple[PretrainModule, LoadReport]:
    """The pretraining module of ``cfg.method`` over the slices ``pool`` of ``cache``,
    encoder initialised from ``cfg.init``; with ``runtime.augment = "device"`` the pool
    is held in memory and the views are made on the training device."""
    on_device = cfg.runtime.augment == "device"
    dataset = TwoViews(
        cache,
        pool,
        dataclasses.replace(cfg.views, size=cfg.crop),
        seed=cfg.runtime.seed,
        params_only=on_device,
    )
    bank = SliceBank.from_cache(cache, pool) if on_device else None

    def load(encoder) -> LoadReport:
        return load_weights(
            encoder, cfg.init, cfg.arch, layout=cfg.init_layout, trust_pickle=cfg.trust_pickle
        )

    method, report = build_method(cfg, load)
    assert report is not None
    return PretrainModule(cfg, method, dataset, bank), report


class PretrainRun(RunKind[PretrainConfig, PretrainResult]):
    """Self-supervised pretraining as a kind of the run template."""

    name = "pretraining"

    def build(
        self, cache: SliceCache, split: Split, run: RunDir
    ) -> tuple[PretrainModule, LoadReport]:
        self.pool = unlabelled_pool(cache, split.train)
        module, report = build_pretrain_module(self.cfg, cache, self.pool)
        log.info("compile: %s (%s)", module.compiled, module.compile_reason)
        return module, report

    def save_inputs(
        self, run: RunDir, cache: SliceCache, split: Split, module: L.LightningModule
    ) -> None:
        run.save_pool(
            {
                "slices": len(self.pool),
                "patients": len(split.train),
                "steps_per_epoch": module.steps_per_epoch,
                "world_size": module.world,
            }
        )

    def trainer_settings(self, module: L.LightningModule) -> dict[str, Any]:
        return {
            "max_epochs": self.cfg.epochs,
            "max_steps": module.total_steps,
            "log_every_n_steps": self.cfg.log_every_steps,
        }

    def callbacks(self, run: RunDir, module: L.LightningModule) -> list[Callback]:
        arch, channels = self.cfg.arch, self.cfg.objective.decoder_channels

        def save(encoder, path: Path) -> None:
            save_encoder(encoder, path, arch)

        def save_dec(decoder, path: Path) -> None:
            save_decoder(decoder, path, arch, channels)

        self.exporter = EncoderExport(
            run,
            lambda m: m.method.export_encoder(),
            save,
            lambda m: m.method.export_decoder(),
            save_dec,
        )
        throughput = Throughput(self.cfg.batch_size * module.world, self.cfg.log_every_steps)
        self.first_step = FirstStepClock()
        return [self.exporter, throughput, self.first_step]

    def finish(self, trainer: L.Trainer, module: L.LightningModule, run: RunDir) -> None:
        """A run killed between its last step's checkpoint and the epoch-end export
        resumes with nothing left to train; export that finished epoch's encoder now."""
        if not trainer.is_global_zero:
            return
        epoch, rest = divmod(trainer.global_step, module.steps_per_epoch)
        if rest == 0 and epoch > 0 and not self.exporter.epoch_path(epoch).exists():
            self.exporter.export(module, epoch)

    def summary(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        loss = trainer.callback_metrics.get("train_loss")
        return {
            "steps": trainer.global_step,
            "final_loss": None if loss is None else float(loss),
            "skipped_steps": module.skipped_steps,
            "method": self.cfg.method,
            "collapse": module.collapse.flag,
            "loss_per_epoch": self._loss_curve(trainer),
            "encoder_fingerprint": self._encoder_fingerprint(),
            "world_size": trainer.world_size,
            "compile": {
                "compiled": module.compiled,
                "reason": module.compile_reason,
                # this process's first step (after a resume: the resumed one); compiled,
                # it holds the compilation
                "first_step_s": self.first_step.seconds,
            },
            "config": to_dict(self.cfg),
        }

    def _encoder_fingerprint(self) -> str:
        """The fingerprint a fine-tune records in ``init.json`` when it starts from this
        run's last encoder (the same import, :func:`load_unet_encoder`, into a U-Net with
        the default decoder depth), so a study can tell which run of a pretraining job
        its fine-tunes loaded; ``""`` (and a warning) when that import fails, so a
        finished run still writes its result."""
        path = RunDir(Path(self.cfg.out)).encoder_last
        if not path.is_file():
            return ""
        try:
            return load_unet_encoder(build_unet(self.cfg.arch, 2), path, self.cfg.arch).fingerprint
        except Exception as err:  # provenance only: the run itself has finished
            log.warning("%s: no encoder fingerprint recorded (%s)", path, err)
            return ""

    def _loss_curve(self, trainer: L.Trainer) -> list[dict[str, float]]:
        """Per-epoch means of the step log (flushed first), kept in ``result.json``."""
        for logger in trainer.loggers:
            logger.save()
        log = RunDir(Path(self.cfg.out)).step_log
        return epoch_means(read_csv_rows(log)) if log.is_file() else []

    def load_result(self, run: RunDir) -> PretrainResult:
        info = run.load_result()
        return PretrainResult(run.path, run.encoders(), int(info["steps"]), info.get("final_loss"))
