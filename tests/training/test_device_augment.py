"""Device-side batched augmentation trains like the per-sample worker path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medssl.training.finetune import finetune, read_curve
from medssl.training.pretrain import pretrain
from tests.conftest import tiny_finetune_config, tiny_pretrain_config


def _run(cache: Path, out: Path, augment: str) -> Path:
    finetune(tiny_finetune_config(cache, out, f"runtime.augment={augment}"), progress=False)
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true"])
def test_gpu_run_end_to_end(tiny_cache: Path, tmp_path: Path, precision: str) -> None:
    """The GPU path end to end (slice bank placed on the GPU when it fits, fused Adam with
    medssl's clipping, validation, BYOL): runs finish with finite curves and weights."""
    gpu = ["runtime.accelerator=gpu", f"runtime.precision={precision}"]
    ft = finetune(tiny_finetune_config(tiny_cache, tmp_path / "ft", *gpu), progress=False)
    curve = read_curve(tmp_path / "ft")
    assert len(curve["val_loss"]) == 2 and all(map(math.isfinite, curve["val_loss"])), curve
    weights = load_file(str(tmp_path / "ft" / "best.safetensors"))
    assert all(bool(torch.isfinite(w.float()).all()) for w in weights.values())
    assert ft is not None
    pretrain(tiny_pretrain_config(tiny_cache, tmp_path / "pt", *gpu), progress=False)
    encoder = load_file(str(tmp_path / "pt" / "encoder_last.safetensors"))
    assert all(bool(torch.isfinite(w.float()).all()) for w in encoder.values())
