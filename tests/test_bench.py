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
    assert out["warmup_s"] == pytest.approx(0.4)  # the one warm-up step's work
    assert timer.summary(warmup=2, samples_per_step=8)["warmup_s"] == pytest.approx(0.9)
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


def _gpu_data():
    """``benchmarks/gpu_data.py`` (a script, not part of the package)."""
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "gpu_data.py"
    spec = importlib.util.spec_from_file_location("gpu_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_data_round_trip_in_parts(h5_source: Path, tmp_path: Path) -> None:
    """The travel format: parts under their size, every volume back with exact labels
    and images within half an 8-bit level; only the chosen patients; a damaged part is a
    one-line error naming the file."""
    import h5py
    import numpy as np

    gd = _gpu_data()
    chosen = {"patient001", "patient002"}
    (whole,) = gd.pack(h5_source, tmp_path / "whole", chosen, part_mb=100)
    limit = 0.4 * sum(f.stat().st_size for f in whole.glob("*.png")) / 2**20
    parts = gd.pack(h5_source, tmp_path / "pack", chosen, part_mb=limit)
    assert len(parts) >= 2
    for part in parts:
        assert sum(f.stat().st_size for f in part.glob("*.png")) <= limit * 2**20
        gd.unpack(part, tmp_path / "src")
    back = sorted(f.name for f in (tmp_path / "src").glob("*.h5"))
    assert back == sorted(f.name for f in h5_source.glob("patient00[12]_*.h5"))
    for name in back:
        with h5py.File(h5_source / name) as a, h5py.File(tmp_path / "src" / name) as b:
            x, y = np.asarray(a["image"], np.float32), np.asarray(b["image"])
            assert y.dtype == np.float32 and y.shape == x.shape
            assert np.abs(x - y).max() <= (x.max() - x.min()) / 510 + 1e-6
            assert np.array_equal(a["label"][:], b["label"][:])
    damaged = next(parts[0].glob("*.image.png"))
    q = gd._unpng(damaged.read_bytes(), [1, -1, 1]).reshape(-1).copy()
    q[0] ^= 1
    damaged.write_bytes(gd._png(q.reshape(1, 1, -1)))
    with pytest.raises(SystemExit, match=damaged.name):
        gd.unpack(parts[0], tmp_path / "again")
