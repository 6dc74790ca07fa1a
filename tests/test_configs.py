"""Hardware-dependent config choices: ``precision=auto`` on CPUs."""

from __future__ import annotations

import pytest
import torch

from medssl import configs
from medssl.configs import RuntimeConfig, precision_choice, resolve_precision


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch):
    """Pretend to be a CPU with the given torch-reported features (no GPU)."""

    def set_features(amx: bool, avx512_bf16: bool) -> None:
        configs.cpu_bf16.cache_clear()
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    yield set_features
    configs.cpu_bf16.cache_clear()


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
