"""U-Net fine-tuning runs: config → run directory with curve and best model.

A kind of the run template (:mod:`medssl.training.run`): :class:`FinetuneRun` supplies
the U-Net module over a label budget, its trainer settings (fixed step count,
validation every ``val_every_steps``) and the raw facts of ``result.json``. Run
directory (file names: :class:`~medssl.artifacts.rundir.RunDir`)::

    config.yaml             the resolved FinetuneConfig
    prepare.json            the cache's preprocessing config and label set (for predict)
    split.json, budget.json patient split; the labelled slices used, as (patient, frame, slice)
    init.json               what the encoder weight import matched
    curve.csv               step, val_loss, IoU/Dice per class (the label set's names) and mean
    best.safetensors        weights with the best validation mean IoU (+ best.json)
    checkpoints/last.ckpt   resume state
    logs/                   per-step training metrics (CSV, TensorBoard)
    result.json             written last: steps, skipped steps, labelled slices, best and
                            final validation IoU, world size (summaries such as steps to
                            95 % and the curve's AUC are derived from curve.csv by
                            :mod:`medssl.analysis.curves`)

Under DDP every rank validates its own share of the validation volumes and the scores
are summed across ranks (:mod:`medssl.training.validation`); rank 0 writes the curve
and the best model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback

from medssl.artifacts.rundir import RunDir
from medssl.artifacts.split import Split
from medssl.configs import FinetuneConfig
from medssl.data.batch_augment import SliceBank
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import LabelledSlices, Volumes
from medssl.data.split_files import resolve_labelled
from medssl.data.splits import budget_patients, budget_record, budget_slices, labelled_keys
from medssl.models.unet import build_unet, load_unet_encoder
from medssl.models.weights import LoadReport, load_decoder
from medssl.overrides import ConfigError
from medssl.training.run import RunKind, execute
from medssl.training.segment_module import SegmentationModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneResult:
    """Summary of a finished fine-tuning run (from ``result.json``)."""

    run_dir: Path
    steps: int
    labelled_slices: int
    best_val_iou: float
    final_val_iou: float


def select_budget(cache: SliceCache, split: Split, cfg: FinetuneConfig) -> list[int]:
    """Indices of the labelled training slices this run may use: the explicit set of
    ``cfg.labelled``, else a drawn budget (nested per seed)."""
    given = [cfg.labelled_slices, cfg.labelled_patients, cfg.labelled]
    if sum(x is not None for x in given) > 1:
        raise ConfigError("give one of labelled_slices, labelled_patients or labelled")
    if cfg.labelled is not None:
        return resolve_labelled(cfg.labelled, labelled_keys(cache), split)
    if cfg.labelled_patients is not None:
        return budget_patients(cache, split, cfg.labelled_patients, cfg.budget_seed)
    return budget_slices(cache, split, cfg.labelled_slices, cfg.budget_seed)


def finetune(
    cfg: FinetuneConfig,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> FinetuneResult:
    """Run (or resume) a fine-tuning run as configured.

    Args:
        cfg: run config (``data`` and ``out`` must be set).
        resume: continue from the run's checkpoint when present.
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks (after medssl's own).

    Raises:
        Preempted: SIGTERM/SIGUSR1 arrived; the checkpoint was saved at a step boundary.
        NumericalError: too many consecutive non-finite losses.
    """
    return execute(FinetuneRun(cfg), resume, progress, callbacks)


def build_segmentation_module(
    cfg: FinetuneConfig,
    cache: SliceCache,
    budget: list[int],
    val_patients: tuple[str, ...] | list[str],
    run_dir: Path | RunDir,
) -> tuple[SegmentationModule, LoadReport]:
    """The U-Net module trained on the slices ``budget`` and validated on the volumes of
    ``val_patients``, encoder initialised from ``cfg.init``; with ``runtime.augment =
    "device"`` the budget's slices and labels are held in memory and each batch is
    augmented on the training device. Scores are named by the cache's label set."""
    on_device = cfg.runtime.augment == "device"
    unet = build_unet(cfg.arch, cache.num_classes, cfg.decoder_channels)
    report = load_unet_encoder(
        unet, cfg.init, cfg.arch, layout=cfg.init_layout, trust_pickle=cfg.trust_pickle
    )
    if cfg.init_decoder:
        load_decoder(unet.decoder, cfg.init_decoder, cfg.arch, cfg.decoder_channels)
    train_set = LabelledSlices(
        cache,
        budget,
        dataclasses.replace(cfg.augment, size=cfg.crop),
        cfg.budget_seed,
        params_only=on_device,
    )
    bank = SliceBank.from_cache(cache, budget, with_labels=True) if on_device else None
    module = SegmentationModule(
        cfg,
        unet,
        train_set,
        Volumes(cache, val_patients),
        cache.num_classes,
        run_dir,
        bank,
        label_names=dict(cache.label_set.names),
    )
    return module, report


class FinetuneRun(RunKind[FinetuneConfig, FinetuneResult]):
    """Fine-tuning as a kind of the run template."""

    name = "fine-tuning"

    def build(
        self, cache: SliceCache, split: Split, run: RunDir
    ) -> tuple[SegmentationModule, LoadReport]:
        self.budget = select_budget(cache, split, self.cfg)
        return build_segmentation_module(self.cfg, cache, self.budget, split.val, run)

    def save_inputs(
        self, run: RunDir, cache: SliceCache, split: Split, module: L.LightningModule
    ) -> None:
        cfg = self.cfg
        run.save_prepare(
            {
                "config": cache.manifest["config"],
                "label_names": cache.manifest["label_names"],
                "label_set": cache.label_set.to_dict(),
                "cache": str(cache.path),
                "format": cache.manifest["format"],
            }
        )
        run.save_budget(
            budget_record(
                cache,
                self.budget,
                seed=cfg.budget_seed,
                slices=cfg.labelled_slices,
                patients=cfg.labelled_patients,
                **({} if cfg.labelled is None else {"labelled_file": cfg.labelled}),
            )
        )

    def on_resume(self, run: RunDir, ckpt_step: int | None) -> None:
        # curve points after the checkpoint are recomputed (a fresh run: none are kept)
        run.truncate_curve(ckpt_step)

    def checkpoint_settings(self) -> dict[str, Any]:
        return {"val_every_steps": self.cfg.val_every_steps}

    def trainer_settings(self, module: L.LightningModule) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "max_epochs": 1,
            "max_steps": cfg.steps,
            "val_check_interval": cfg.val_every_steps,
            "check_val_every_n_epoch": None,
            "num_sanity_val_steps": 0,
            "gradient_clip_val": cfg.grad_clip,
            "log_every_n_steps": 10,
        }

    def finish(self, trainer: L.Trainer, module: L.LightningModule, run: RunDir) -> None:
        # the last step is not a multiple of the validation interval: validate it too, so
        # every run ends with a curve point and a best model (rank 0 read the curve)
        last = _last_curve_step(run) if trainer.is_global_zero else None
        last = trainer.strategy.broadcast(last, src=0)
        if trainer.global_step >= self.cfg.steps and last != trainer.global_step:
            trainer.validate(module, verbose=False)

    def summary(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        curve = RunDir(self.cfg.out).read_curve()
        v = curve.get("slice_iou/mean", np.array([]))
        return {
            "steps": trainer.global_step,
            "skipped_steps": module.skipped_steps,
            "labelled_slices": len(self.budget),
            "best_val_iou": float(np.nanmax(v)) if v.size else float("nan"),
            "final_val_iou": float(v[-1]) if v.size else float("nan"),
            "world_size": trainer.world_size,
        }

    def load_result(self, run: RunDir) -> FinetuneResult:
        return load_result(run)


def _last_curve_step(run: RunDir) -> int | None:
    steps = run.read_curve().get("step", np.array([]))
    return int(steps[-1]) if steps.size else None


def load_result(run_dir: Path | RunDir) -> FinetuneResult:
    """The :class:`FinetuneResult` of a finished run directory."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    info = run.load_result()
    return FinetuneResult(
        run.path,
        int(info["steps"]),
        int(info["labelled_slices"]),
        info["best_val_iou"],
        info["final_val_iou"],
    )
