"""Run a training run in this process and kill it on purpose (used by the fault tests).

    python -m tests.faults.killer pretrain|finetune CONFIG.yaml MODE STEP [--resume]

MODE ``step``: SIGKILL right after optimisation step STEP (checkpoint callbacks of
that step have run); ``ckpt``: SIGKILL in the middle of writing the checkpoint of
step STEP (half of its bytes are on disk); ``none``: run to the end. Prints
``RESUMED_FROM <step>`` when resuming from a checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import lightning.fabric.plugins.io.torch_io as torch_io
import torch
from lightning.pytorch.callbacks import Callback

from medssl.configs import FinetuneConfig, PretrainConfig
from medssl.overrides import load_yaml


class KillAfterStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_during_checkpoint_write(step: int) -> None:
    original = torch_io._atomic_save

    def half_then_die(checkpoint: dict, filepath) -> None:
        if checkpoint.get("global_step") != step:
            return original(checkpoint, filepath)
        import io

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        data = buffer.getvalue()
        with open(filepath, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    torch_io._atomic_save = half_then_die


def main() -> None:
    kind, config, mode, step = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    resume = "--resume" in sys.argv
    callbacks = []
    if mode == "step":
        callbacks.append(KillAfterStep(step))
    elif mode == "ckpt":
        kill_during_checkpoint_write(step)
    if kind == "pretrain":
        from medssl.training.pretrain import pretrain

        cfg = load_yaml(PretrainConfig, config)
        run = pretrain
    else:
        from medssl.training.finetune import finetune

        cfg = load_yaml(FinetuneConfig, config)
        run = finetune
    if resume:
        from medssl.training.rundir import resume_checkpoint

        ckpt = resume_checkpoint(Path(cfg.out), cfg, True)
        start = -1 if ckpt is None else torch.load(ckpt, weights_only=True)["global_step"]
        print(f"RESUMED_FROM {start}", flush=True)
    run(cfg, resume=resume, progress=False, callbacks=callbacks)


if __name__ == "__main__":
    main()
