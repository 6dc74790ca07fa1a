"""NaN batches under mixed precision are skipped, a run of them aborts clearly, and a
collapsing BYOL encoder is flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from medssl.configs import FinetuneConfig
from medssl.errors import NumericalError
from medssl.training.callbacks import LAST_CKPT, parameters_finite
from medssl.training.finetune import finetune
from medssl.training.guards import CollapseMonitor
from medssl.training.pretrain import pretrain
from tests.conftest import tiny_finetune_config, tiny_pretrain_config


class PoisonBatches(Callback):
    """Replace the image batch with NaN (or every view with one constant) at some steps."""

    def __init__(self, steps, mode: str = "nan") -> None:
        self.steps, self.mode = steps, mode

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step not in self.steps:
            return
        for key in ("image", "view1", "view2"):
            if key in batch:
                batch[key].fill_(float("nan") if self.mode == "nan" else 0.5)


def _ft(cache: Path, out: Path, *extra: str) -> FinetuneConfig:
    return tiny_finetune_config(cache, out, "runtime.precision=bf16-mixed", *extra)


def test_nan_batches_are_skipped(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = finetune(
        _ft(tiny_cache, run, "steps=10"), progress=False, callbacks=[PoisonBatches({2, 6})]
    )
    info = json.loads((run / "result.json").read_text())
    assert result.steps == 10 and info["skipped_steps"] == 2
    state = torch.load(run / "checkpoints" / LAST_CKPT, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_consecutive_nan_batches_abort_and_keep_the_good_checkpoint(
    tiny_cache: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cfg = _ft(tiny_cache, run, "steps=40", "ckpt_every_steps=2", "max_bad_steps=4")
    with pytest.raises(NumericalError, match="4 consecutive non-finite losses"):
        finetune(cfg, progress=False, callbacks=[PoisonBatches(set(range(5, 40)))])
    ckpt = torch.load(run / "checkpoints" / LAST_CKPT, weights_only=True)
    assert ckpt["global_step"] <= 8
    state = ckpt["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert not (run / "result.json").exists()


def test_constant_inputs_raise_the_collapse_flag(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = tiny_pretrain_config(tiny_cache, run, "collapse_patience=3", "max_steps=6")
    pretrain(cfg, progress=False, callbacks=[PoisonBatches(set(range(100)), "constant")])
    flag = json.loads((run / "result.json").read_text())["collapse"]
    assert flag is not None and flag["online_std"] < flag["threshold"]


def test_healthy_run_is_not_flagged(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = tiny_pretrain_config(tiny_cache, run, "collapse_patience=3", "max_steps=6")
    pretrain(cfg, progress=False)
    assert json.loads((run / "result.json").read_text())["collapse"] is None


def test_collapse_monitor_thresholds() -> None:
    monitor = CollapseMonitor(dim=256, fraction=0.1, patience=3)
    healthy = torch.nn.functional.normalize(torch.randn(64, 256), dim=-1).std(0).mean()
    assert not any(monitor.update(float(healthy), s) for s in range(10))
    assert [monitor.update(0.0, s) for s in range(10, 14)] == [False, False, True, False]
    assert monitor.flag["step"] == 12


def test_parameters_finite() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert parameters_finite(net)
    net[1].running_var[0] = float("inf")
    assert not parameters_finite(net)
