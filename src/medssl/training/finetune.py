"""U-Net fine-tuning runs: config → run directory with curve, best model and summaries.

Run directory::

    config.yaml             the resolved FinetuneConfig
    prepare.json            the cache's preprocessing config and label names (for predict)
    split.json, budget.json patient split; the labelled slices used, as (patient, frame, slice)
    init.json               what the encoder weight import matched
    curve.csv               step, val_loss, IoU/Dice per class and mean (every K steps)
    best.safetensors        weights with the best validation mean IoU (+ best.json)
    checkpoints/last.ckpt   resume state
    logs/                   per-step training metrics (CSV, TensorBoard)
    result.json             written last: final/best IoU, steps-to-95%, curve AUC
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from medssl.analysis.curves import curve_auc, steps_to_fraction
from medssl.configs import FinetuneConfig
from medssl.data.batch_augment import SliceBank
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import LabelledSlices, Volumes
from medssl.data.resolve import resolve_cache
from medssl.data.splits import Split, budget_patients, budget_slices, save_budget, split_for_cache
from medssl.models.unet import build_unet, encoder_of
from medssl.models.weights import LoadReport, load_weights
from medssl.overrides import ConfigError, save_yaml
from medssl.training.callbacks import AtomicCheckpoint, PreemptionSaver
from medssl.training.reproducible import apply_blas_settings
from medssl.training.rundir import checkpoint_step, resume_checkpoint
from medssl.training.runtime import trainer_kwargs
from medssl.training.segment_module import SegmentationModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneResult:
    """Summary of a finished fine-tuning run (also in ``result.json``)."""

    run_dir: Path
    steps: int
    labelled_slices: int
    best_val_iou: float
    final_val_iou: float
    steps_to_95: float
    curve_auc: float


def select_budget(cache: SliceCache, split: Split, cfg: FinetuneConfig) -> list[int]:
    """Indices of the labelled training slices this run may use (nested per seed)."""
    if cfg.labelled_slices is not None and cfg.labelled_patients is not None:
        raise ConfigError("give labelled_slices or labelled_patients, not both")
    if cfg.labelled_patients is not None:
        return budget_patients(cache, split, cfg.labelled_patients, cfg.budget_seed)
    return budget_slices(cache, split, cfg.labelled_slices, cfg.budget_seed)


def _truncate_curve(run_dir: Path, ckpt: Path | None) -> None:
    """On resume, drop curve rows written after the checkpoint (they are recomputed)."""
    curve = run_dir / "curve.csv"
    if ckpt is None or not curve.exists():
        curve.unlink(missing_ok=True)
        return
    step = checkpoint_step(ckpt)
    with curve.open() as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    if not rows:
        curve.unlink()
        return
    with curve.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
    apply_blas_settings()
    if not cfg.data or not cfg.out:
        raise ConfigError("fine-tuning needs data and out")
    run_dir = Path(cfg.out)
    if resume and (run_dir / "result.json").exists():
        return load_result(run_dir)
    ckpt = resume_checkpoint(run_dir, cfg, resume)
    L.seed_everything(cfg.runtime.seed, workers=True, verbose=False)
    cache = resolve_cache(cfg.data)
    split = split_for_cache(cache, cfg.split_seed)
    budget = select_budget(cache, split, cfg)
    module, report = build_segmentation_module(cfg, cache, budget, split.val, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_inputs(run_dir, cfg, cache, split, budget, report)
    _truncate_curve(run_dir, ckpt)
    checkpoint = AtomicCheckpoint(
        run_dir / "checkpoints", cfg.ckpt_every_steps, val_every_steps=cfg.val_every_steps
    )
    preemption = PreemptionSaver(checkpoint)
    trainer = L.Trainer(
        max_epochs=1,
        max_steps=cfg.steps,
        val_check_interval=cfg.val_every_steps,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.grad_clip,
        callbacks=[checkpoint, preemption, *callbacks],
        logger=[
            CSVLogger(run_dir, name="logs", version=""),
            TensorBoardLogger(run_dir, name="logs", version="", default_hp_metric=False),
        ],
        log_every_n_steps=10,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        **trainer_kwargs(cfg.runtime),
    )
    trainer.fit(module, ckpt_path=ckpt, weights_only=True)
    preemption.raise_if_preempted(run_dir)
    if trainer.global_step >= cfg.steps and _last_curve_step(run_dir) != trainer.global_step:
        # the last step is not a multiple of the validation interval: validate it too, so
        # every run ends with a curve point and a best model
        trainer.validate(module, verbose=False)
    if trainer.is_global_zero:
        _write_result(run_dir, trainer.global_step, len(budget), module.skipped_steps)
    trainer.strategy.barrier("result.json")  # other ranks read what rank 0 wrote
    return load_result(run_dir)


def build_segmentation_module(
    cfg: FinetuneConfig,
    cache: SliceCache,
    budget: list[int],
    val_patients: tuple[str, ...] | list[str],
    run_dir: Path,
) -> tuple[SegmentationModule, LoadReport]:
    """The U-Net module trained on the slices ``budget`` and validated on the volumes of
    ``val_patients``, encoder initialised from ``cfg.init``; with ``runtime.augment =
    "device"`` the budget's slices and labels are held in memory and each batch is
    augmented on the training device."""
    on_device = cfg.runtime.augment == "device"
    unet = build_unet(cfg.arch, cache.num_classes, cfg.decoder_channels)
    report = load_weights(
        encoder_of(unet), cfg.init, cfg.arch, layout=cfg.init_layout, trust_pickle=cfg.trust_pickle
    )
    train_set = LabelledSlices(
        cache,
        budget,
        dataclasses.replace(cfg.augment, size=cfg.crop),
        cfg.budget_seed,
        params_only=on_device,
    )
    bank = SliceBank.from_cache(cache, budget, with_labels=True) if on_device else None
    module = SegmentationModule(
        cfg, unet, train_set, Volumes(cache, val_patients), cache.num_classes, run_dir, bank
    )
    return module, report


def _write_inputs(
    run_dir: Path, cfg: FinetuneConfig, cache: SliceCache, split: Split, budget: list[int], report
) -> None:
    save_yaml(cfg, run_dir / "config.yaml")
    prepare = {
        "config": cache.manifest["config"],
        "label_names": cache.manifest["label_names"],
        "cache": str(cache.path),
        "format": cache.manifest["format"],
    }
    (run_dir / "prepare.json").write_text(json.dumps(prepare, indent=1))
    split.save(run_dir / "split.json")
    save_budget(
        run_dir / "budget.json",
        cache,
        budget,
        seed=cfg.budget_seed,
        slices=cfg.labelled_slices,
        patients=cfg.labelled_patients,
    )
    (run_dir / "init.json").write_text(json.dumps(asdict(report), indent=1, default=str))


def _last_curve_step(run_dir: Path) -> int | None:
    curve = read_curve(run_dir) if (run_dir / "curve.csv").exists() else {}
    steps = curve.get("step", np.array([]))
    return int(steps[-1]) if steps.size else None


def read_curve(run_dir: Path) -> dict[str, np.ndarray]:
    """``curve.csv`` as columns of floats."""
    with (run_dir / "curve.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in (rows[0] if rows else {})}


def _write_result(run_dir: Path, steps: int, n_labelled: int, skipped: int = 0) -> None:
    curve = read_curve(run_dir) if (run_dir / "curve.csv").exists() else {}
    s, v = curve.get("step", np.array([])), curve.get("slice_iou/mean", np.array([]))
    result = {
        "steps": steps,
        "skipped_steps": skipped,
        "labelled_slices": n_labelled,
        "best_val_iou": float(np.nanmax(v)) if v.size else float("nan"),
        "final_val_iou": float(v[-1]) if v.size else float("nan"),
        "steps_to_95": steps_to_fraction(s, v, 0.95),
        "curve_auc": curve_auc(s, v),
    }
    tmp = run_dir / ".result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(run_dir / "result.json")


def load_result(run_dir: Path) -> FinetuneResult:
    info = json.loads((run_dir / "result.json").read_text())
    return FinetuneResult(
        run_dir,
        int(info["steps"]),
        int(info["labelled_slices"]),
        info["best_val_iou"],
        info["final_val_iou"],
        info["steps_to_95"],
        info["curve_auc"],
    )
