"""BYOL pretraining runs: config → run directory with per-epoch encoders.

Run directory::

    config.yaml                      the resolved PretrainConfig
    split.json, pool.json            patient split and the size of the unlabelled pool
    init.json                        what the weight import matched (loud loading)
    encoder_epoch_000.safetensors    target encoder before training, then after each epoch
    encoder_last.safetensors         the latest of them
    checkpoints/last.ckpt            resume state (model, target, optimiser, schedule, step)
    logs/metrics.csv, logs/events.*  per-step loss, τ, lr, collapse monitor, throughput
    result.json                      written last: the run finished

Specialist = ``init="random"``; hierarchical = ``init`` with ImageNet (or BYOL-ImageNet)
weights, then BYOL on the target domain.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from medssl.configs import PretrainConfig
from medssl.data.batch_augment import SliceBank
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import TwoViews
from medssl.data.resolve import resolve_cache
from medssl.data.splits import split_for_cache, unlabelled_pool
from medssl.models.byol import BYOL
from medssl.models.encoders import create_encoder
from medssl.models.weights import LoadReport, load_weights, save_encoder
from medssl.overrides import ConfigError, save_yaml, to_dict
from medssl.training.byol_module import BYOLModule
from medssl.training.callbacks import (
    AtomicCheckpoint,
    EncoderExport,
    PreemptionSaver,
    Throughput,
)
from medssl.training.reproducible import apply_blas_settings
from medssl.training.rundir import resume_checkpoint
from medssl.training.runtime import trainer_kwargs

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
    """Run (or resume) BYOL pretraining as configured.

    Args:
        cfg: run config (``data`` and ``out`` must be set).
        resume: continue from ``out/checkpoints/last.ckpt`` when present.
        progress: show Lightning's progress bar.
        callbacks: extra Lightning callbacks (after medssl's own).

    Raises:
        Preempted: SIGTERM/SIGUSR1 arrived; the checkpoint was saved at a step boundary.
        NumericalError: too many consecutive non-finite losses.
    """
    apply_blas_settings()
    if not cfg.data or not cfg.out:
        raise ConfigError("pretraining needs data and out")
    run_dir = Path(cfg.out)
    if resume and (run_dir / "result.json").exists():
        log.info("%s already finished", run_dir)
        return _result(run_dir)
    ckpt = resume_checkpoint(run_dir, cfg, resume)
    L.seed_everything(cfg.runtime.seed, workers=True, verbose=False)
    cache = resolve_cache(cfg.data)
    split = split_for_cache(cache, cfg.split_seed)
    pool = unlabelled_pool(cache, split.train)
    module, report = build_byol_module(cfg, cache, pool)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run_dir / "config.yaml")
    split.save(run_dir / "split.json")
    (run_dir / "pool.json").write_text(
        json.dumps(
            {
                "slices": len(pool),
                "patients": len(split.train),
                "steps_per_epoch": module.steps_per_epoch,
                "world_size": module.world,
            }
        )
    )
    (run_dir / "init.json").write_text(json.dumps(asdict(report), indent=1, default=str))
    trainer, preemption = _trainer(cfg, run_dir, module, progress, callbacks)
    trainer.fit(module, ckpt_path=ckpt, weights_only=True)
    preemption.raise_if_preempted(run_dir)
    if trainer.is_global_zero:
        _export_missing_final_epoch(trainer, module)
    loss = trainer.callback_metrics.get("train_loss")
    result = {
        "steps": trainer.global_step,
        "final_loss": None if loss is None else float(loss),
        "skipped_steps": module.skipped_steps,
        "collapse": module.collapse.flag,
        "world_size": trainer.world_size,
        "config": to_dict(cfg),
    }
    if trainer.is_global_zero:
        (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    trainer.strategy.barrier("result.json")  # other ranks read what rank 0 wrote
    return _result(run_dir)


def build_byol_module(
    cfg: PretrainConfig, cache: SliceCache, pool: list[int]
) -> tuple[BYOLModule, LoadReport]:
    """The BYOL module over the slices ``pool`` of ``cache``, encoder initialised from
    ``cfg.init``; with ``runtime.augment = "device"`` the pool is held in memory and the
    views are made on the training device."""
    on_device = cfg.runtime.augment == "device"
    dataset = TwoViews(
        cache,
        pool,
        dataclasses.replace(cfg.views, size=cfg.crop),
        seed=cfg.runtime.seed,
        params_only=on_device,
    )
    bank = SliceBank.from_cache(cache, pool) if on_device else None
    encoder = create_encoder(cfg.arch, in_chans=1)
    report = load_weights(
        encoder, cfg.init, cfg.arch, layout=cfg.init_layout, trust_pickle=cfg.trust_pickle
    )
    return BYOLModule(cfg, BYOL(encoder, cfg.heads), dataset, bank), report


def _trainer(
    cfg: PretrainConfig,
    run_dir: Path,
    module: BYOLModule,
    progress: bool,
    extra: Sequence[Callback] = (),
) -> tuple[L.Trainer, PreemptionSaver]:
    def save(encoder, path: Path) -> None:
        save_encoder(encoder, path, cfg.arch)

    checkpoint = AtomicCheckpoint(run_dir / "checkpoints", cfg.ckpt_every_steps)
    preemption = PreemptionSaver(checkpoint)
    callbacks = [
        EncoderExport(run_dir, lambda m: m.byol.target_backbone, save),
        checkpoint,
        preemption,
        Throughput(cfg.batch_size * module.world, cfg.log_every_steps),
        *extra,
    ]
    loggers = [
        CSVLogger(run_dir, name="logs", version=""),
        TensorBoardLogger(run_dir, name="logs", version="", default_hp_metric=False),
    ]
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        max_steps=module.total_steps,
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=cfg.log_every_steps,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        **trainer_kwargs(cfg.runtime),
    )
    return trainer, preemption


def _export_missing_final_epoch(trainer: L.Trainer, module: BYOLModule) -> None:
    """A run killed between its last step's checkpoint and the epoch-end export resumes
    with nothing left to train; export that finished epoch's encoder now."""
    epoch, rest = divmod(trainer.global_step, module.steps_per_epoch)
    exporter = next(c for c in trainer.callbacks if isinstance(c, EncoderExport))
    if rest == 0 and epoch > 0 and not exporter.epoch_path(epoch).exists():
        exporter.export(module, epoch)


def _result(run_dir: Path) -> PretrainResult:
    info = json.loads((run_dir / "result.json").read_text())
    encoders = sorted(run_dir.glob("encoder_epoch_*.safetensors"))
    return PretrainResult(run_dir, encoders, int(info["steps"]), info.get("final_loss"))
