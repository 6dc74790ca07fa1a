"""Config choices that outlived a changed default: ``compile`` reads ``auto`` and
booleans; run identity across changed defaults."""

from __future__ import annotations

import pytest

from medssl.configs import FinetuneConfig, RuntimeConfig, config_identity
from medssl.overrides import ConfigError, apply_overrides


def test_compile_reads_auto_and_booleans_and_names_a_bad_value() -> None:
    runtime = RuntimeConfig()
    assert runtime.compile == "auto"
    assert apply_overrides(runtime, ["compile=true"]).compile is True
    assert apply_overrides(runtime, ["compile=false"]).compile is False
    assert apply_overrides(runtime, ["compile=auto"]).compile == "auto"
    with pytest.raises(ConfigError, match=r"compile: 'maybe' is not a boolean.*not one of"):
        apply_overrides(runtime, ["compile=maybe"])


def test_compile_auto_is_the_same_run_as_the_eager_default_it_replaced() -> None:
    """Runs (and study job ids) recorded with ``compile: false``, the old default, stay
    the same runs under ``auto``; compiling explicitly is another run, and so is any
    other difference."""
    auto = FinetuneConfig(data="d", out="o")
    old = apply_overrides(auto, ["runtime.compile=false"])
    assert auto != old
    assert config_identity(auto) == config_identity(old)
    assert config_identity(auto)["runtime"]["compile"] is False
    forced = apply_overrides(auto, ["runtime.compile=true"])
    assert config_identity(forced) != config_identity(auto)
    assert config_identity(apply_overrides(auto, ["steps=7"])) != config_identity(auto)
