"""Hardware-dependent choices: ``precision=auto`` on CPUs, ``compile=auto``."""

from __future__ import annotations

import pytest
import torch

from medssl import hardware
from medssl.configs import RuntimeConfig
from medssl.hardware import (
    COMPILE_MIN_STEPS,
    compile_choice,
    precision_choice,
    resolve_precision,
)


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch):
    """Pretend to be a CPU with the given torch-reported features (no GPU)."""

    def set_features(amx: bool, avx512_bf16: bool) -> None:
        hardware.cpu_bf16.cache_clear()
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    yield set_features
    hardware.cpu_bf16.cache_clear()


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected", "named"),
    [
        (True, False, "bf16-mixed", "AMX"),
        (False, True, "bf16-mixed", "AVX-512 BF16"),
        (True, True, "bf16-mixed", "AMX"),
        (False, False, "32-true", "neither"),
    ],
)
def test_auto_picks_bf16_on_cpus_with_native_bf16_matmuls(
    cpu, amx: bool, avx512_bf16: bool, expected: str, named: str
) -> None:
    cpu(amx, avx512_bf16)
    precision, why = precision_choice(RuntimeConfig())
    assert precision == expected == resolve_precision(RuntimeConfig())
    assert named in why


def test_an_explicit_precision_is_kept(cpu) -> None:
    cpu(True, True)
    assert precision_choice(RuntimeConfig(precision="32-true")) == ("32-true", "set explicitly")


@pytest.mark.parametrize(
    ("gpu", "accelerator", "kind", "steps", "expected"),
    [
        (True, "auto", "pretrain", COMPILE_MIN_STEPS, True),  # a long GPU pretraining
        (True, "gpu", "pretrain", 10 * COMPILE_MIN_STEPS, True),
        (True, "auto", "pretrain", COMPILE_MIN_STEPS - 1, False),  # too short to repay it
        (True, "auto", "finetune", 10 * COMPILE_MIN_STEPS, False),  # fine-tuning: eager
        (True, "cpu", "pretrain", 10 * COMPILE_MIN_STEPS, False),  # a GPU, not used
        (False, "auto", "pretrain", 10 * COMPILE_MIN_STEPS, False),  # no GPU
    ],
)
def test_compile_auto_compiles_only_long_gpu_pretraining(
    monkeypatch: pytest.MonkeyPatch, gpu: bool, accelerator: str, kind: str, steps: int,
    expected: bool,
) -> None:  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    compiled, why = compile_choice(RuntimeConfig(accelerator=accelerator), kind, steps)
    assert compiled is expected
    assert why.startswith("auto: ")
    for forced in (True, False):  # an explicit setting wins everywhere
        runtime = RuntimeConfig(accelerator=accelerator, compile=forced)
        assert compile_choice(runtime, kind, steps) == (forced, "set explicitly")
