"""Validate (or fine-tune) with N CPU processes and record what each rank scored (used by
tests/training/test_ddp_validation.py).

    python -m tests.training.ddp_validation validate|fit CONFIG.yaml OUT DEVICES

``validate``: one validation of the U-Net built from the config with seed 0 (the same
weights in every process and for every DEVICES), written to ``OUT/curve.csv`` by rank 0.
``fit``: the fine-tuning run of the config at ``OUT``. Each rank writes
``OUT/seen_rank<r>.json``: ``[step, volume, scored]`` for every validation batch it ran.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

from medssl.artifacts.rundir import RunDir
from medssl.configs import FinetuneConfig
from medssl.data.resolve import resolve_cache
from medssl.data.splits import split_for_cache
from medssl.overrides import load_yaml
from medssl.training.reproducible import apply_blas_settings


class Recorder(Callback):
    """Every validation batch a rank runs: ``[global step, volume, scored]``."""

    def __init__(self, out: Path) -> None:
        self.out, self.seen = out, []

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        self.seen.append([int(trainer.global_step), int(batch["volume"]), bool(batch["scored"])])

    def on_validation_end(self, trainer, pl_module) -> None:
        path = self.out / f"seen_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.seen))


def main() -> None:
    apply_blas_settings()
    mode, config, out, devices = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    cfg = load_yaml(FinetuneConfig, config)
    runtime = dataclasses.replace(cfg.runtime, devices=devices)
    cfg = dataclasses.replace(cfg, out=str(out), runtime=runtime)
    out.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(out)
    if mode == "fit":
        from medssl.training.finetune import finetune

        finetune(cfg, progress=False, callbacks=[recorder])
        return
    from medssl.training.finetune import build_segmentation_module, select_budget
    from medssl.training.runtime import trainer_kwargs

    L.seed_everything(0, verbose=False)
    cache = resolve_cache(cfg.data)
    split = split_for_cache(cache, cfg.split_seed)
    budget = select_budget(cache, split, cfg)
    module, _ = build_segmentation_module(cfg, cache, budget, split.val, RunDir(out))
    trainer = L.Trainer(
        logger=False,
        callbacks=[recorder],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs(cfg.runtime),
    )
    trainer.validate(module, verbose=False)


if __name__ == "__main__":
    main()
