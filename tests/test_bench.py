"""``medssl bench``: runs real steps and reports sane figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medssl.cli import main
from medssl.configs import RuntimeConfig
from medssl.overrides import ConfigError
from medssl.training.bench import BenchConfig, StepTimer, bench, step_figures

FIELDS = {"images_per_s", "device", "precision", "data_wait_share", "peak_rss_mb", "timed_steps"}


@pytest.mark.parametrize("kind", ["finetune", "pretrain"])
def test_cli_bench_two_steps(kind: str, tiny_cache: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        ["bench", kind, "--data", str(tiny_cache), "--arch", "resnet18", "--size", "32",
         "--batch", "2", "--steps", "2", "--warmup", "1", "--precision", "32-true"]
    )  # fmt: skip
    assert code == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) >= FIELDS
    assert out["bench"] == kind and out["timed_steps"] == 2
    assert out["images_per_s"] > 0 and 0 <= out["data_wait_share"] < 1
    assert out["precision"] == "32-true" and out["augment"] == "device"
    assert out["bank_mb"] > 0 and out["cache_mb"] > 0


def test_synthetic_needs_no_data() -> None:
    out = bench(
        BenchConfig(
            kind="finetune", arch="resnet18", size=32, batch=2, steps=2, warmup=1,
            synthetic=True,
            runtime=RuntimeConfig(precision="32-true", augment="workers", num_workers=0),
        )
    )  # fmt: skip
    assert out["augment"] == "synthetic" and out["cache_mb"] is None and out["images_per_s"] > 0


def test_bench_refuses_missing_data() -> None:
    with pytest.raises(ConfigError, match="--data"):
        bench(BenchConfig(kind="finetune"))


def test_step_timer_summary_separates_waiting_from_work() -> None:
    timer = StepTimer()
    # step k: waits 0.1 s for data, then computes 0.4 s
    t = 0.0
    for _ in range(5):
        t += 0.1
        timer.starts.append(t)
        t += 0.4
        timer.ends.append(t)
    out = timer.summary(warmup=1, samples_per_step=8)
    assert out["timed_steps"] == 4
    assert out["images_per_s"] == pytest.approx(8 / 0.5)
    assert out["data_wait_share"] == pytest.approx(0.2)
    assert out["step_s_median"] == pytest.approx(0.5)
    assert out["images_per_s_median"] == pytest.approx(8 / 0.5)
    with pytest.raises(RuntimeError):
        timer.summary(warmup=5, samples_per_step=8)


def test_one_slow_step_moves_the_total_figure_not_the_median() -> None:
    starts, ends, t = [], [], 0.0
    for k in range(8):
        starts.append(t)
        t += 2.5 if k == 4 else 0.5  # one step 5x slower
        ends.append(t)
    out = step_figures(starts, ends, warmup=1, samples_per_step=8)
    assert out["images_per_s_median"] == pytest.approx(16.0)
    assert out["images_per_s"] == pytest.approx(8 * 7 / 5.5)
