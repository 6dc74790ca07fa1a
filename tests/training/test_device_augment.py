"""Device-side batched augmentation trains like the per-sample worker path."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from medssl.training.configs import FINETUNE_PRESETS, FinetuneConfig, preset
from medssl.training.finetune import finetune, read_curve
from tests.conftest import TINY_FINETUNE


def _run(cache: Path, out: Path, augment: str) -> Path:
    cfg = preset(
        FinetuneConfig,
        FINETUNE_PRESETS,
        "paper",
        [f"data={cache}", f"out={out}", *TINY_FINETUNE, f"runtime.augment={augment}"],
    )
    finetune(cfg, progress=False)
    return out


def test_device_and_worker_augmentation_give_the_same_run(tiny_cache: Path, tmp_path: Path) -> None:
    a = _run(tiny_cache, tmp_path / "device", "device")
    b = _run(tiny_cache, tmp_path / "workers", "workers")
    ca, cb = read_curve(a), read_curve(b)
    assert torch.allclose(torch.tensor(ca["val_loss"]), torch.tensor(cb["val_loss"]), atol=1e-3), (
        ca["val_loss"],
        cb["val_loss"],
    )
    wa, wb = load_file(str(a / "best.safetensors")), load_file(str(b / "best.safetensors"))
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert worst < 1e-2
