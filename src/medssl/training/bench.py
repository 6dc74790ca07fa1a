"""Throughput benchmark of full training steps (``medssl bench``).

A benchmark is a run of the run template (:mod:`medssl.training.run`) without its
outputs: the run config is the ``paper`` preset with the benchmark's encoder, crop,
batch and :class:`~medssl.configs.RuntimeConfig`; the module comes from the run kind's
own builder (:meth:`~medssl.training.pretrain.PretrainRun.build`,
:meth:`~medssl.training.finetune.FinetuneRun.build`) and the trainer from
:func:`~medssl.training.run.make_trainer` with the kind's settings, validation off and
one callback, :class:`StepTimer`. It runs ``warmup + steps`` optimisation steps and
times the last ``steps``:

- ``images_per_s``: samples per second over the total time of the timed steps (for
  BYOL one sample is two views of one slice), all devices together;
  ``images_per_s_median``: samples per second of the median step, which one slow step
  (a page fault, a neighbour on a shared machine) cannot swing; a large gap between the
  two says the run was disturbed;
- ``data_wait_share``: the share of step time between the end of one step and the
  start of the next, i.e. waiting for the DataLoader, the host-to-device copy and the
  batched on-device augmentation (everything that is not forward/backward/optimiser);
- ``peak_rss_mb``: the process's peak resident memory (and its workers');
- ``warmup_s``: the time of the warm-up steps, which holds ``--compile``'s compilation.

The timer adds no host synchronisation (:class:`StepClock`: on a GPU the steps are
timed with CUDA events on its timeline). ``synthetic=True`` feeds one pre-made batch of
augmented tensors instead of the dataset, which isolates the cost of the input
pipeline (compare both figures). ``step_ms`` and ``wait_ms`` list every timed step.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from medssl.artifacts.manifest import CachePaths
from medssl.artifacts.rundir import RunDir
from medssl.configs import (
    FINETUNE_PRESETS,
    FinetuneConfig,
    PretrainConfig,
    RuntimeConfig,
    preset,
    pretrain_preset,
)
from medssl.data.cache_read import SliceCache
from medssl.data.resolve import resolve_cache
from medssl.data.splits import run_split
from medssl.hardware import cpu_features, precision_choice, uses_gpu
from medssl.models.unet import build_unet
from medssl.overrides import ConfigError
from medssl.training.finetune import FinetuneRun
from medssl.training.methods import build_method
from medssl.training.pretrain import PretrainRun
from medssl.training.pretrain_module import PretrainModule
from medssl.training.reproducible import apply_blas_settings
from medssl.training.run import RunKind, make_trainer
from medssl.training.segment_module import SegmentationModule

log = logging.getLogger(__name__)

SYNTHETIC_CLASSES = 4


def _bench_runtime() -> RuntimeConfig:
    # compile only when asked: a run's ``auto`` rule looks at its length, a bench's
    # handful of steps would never repay it and the timing would hold it
    return RuntimeConfig(num_workers=0, compile=False)


@dataclass(frozen=True)
class BenchConfig:
    """What to time.

    Attributes:
        kind: ``pretrain`` (a pretraining step of ``method``) or ``finetune`` (U-Net step).
        method: the pretraining method (``medssl.configs.METHODS``) with its recipe.
        data: source folder or prepared cache (may be empty with ``synthetic``).
        arch: timm encoder.
        size: crop side in pixels.
        batch: per-device batch.
        steps: timed steps.
        warmup: untimed steps first (allocator, autotuning, worker start-up).
        synthetic: feed a pre-made batch instead of the data pipeline.
        runtime: the run's hardware settings (precision, channels-last, augmentation
            path, workers, devices, compile, cuDNN benchmark; default no workers, eager).
    """

    kind: Literal["pretrain", "finetune"] = "finetune"
    method: str = "byol"
    data: str = ""
    arch: str = "resnet50"
    size: int = 128
    batch: int = 16
    steps: int = 20
    warmup: int = 3
    synthetic: bool = False
    runtime: RuntimeConfig = field(default_factory=_bench_runtime)


class StepClock:
    """Start and end times of training steps, without synchronising inside the run.

    On a CUDA device each mark is an event recorded on the current stream and read
    once at the end, so the host may run ahead of the GPU as it does in real
    training; the times are then positions on the GPU's timeline: a step lasts from
    the previous step's last kernel to its own, and its wait is the gap before its
    first kernel (the batch's copy, the on-device augmentation, and any time the GPU
    sat idle because the host was late). On a CPU the marks are the host clock.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._marks: dict[str, list] = {"start": [], "end": []}

    def mark(self, what: Literal["start", "end"]) -> None:
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))
            self._marks[what].append(event)
        else:
            self._marks[what].append(time.perf_counter())

    def times(self) -> tuple[list[float], list[float]]:
        """``(starts, ends)`` in seconds (synchronises the device once)."""
        starts, ends = self._marks["start"], self._marks["end"]
        if self.device.type != "cuda" or not starts:
            return list(starts), list(ends)
        torch.cuda.synchronize(self.device)
        ref = starts[0]
        return [ref.elapsed_time(e) / 1e3 for e in starts], [
            ref.elapsed_time(e) / 1e3 for e in ends
        ]


class StepTimer(Callback):
    """Marks the start and end of every training step (see :class:`StepClock`)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self._clock: StepClock | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._clock is None:
            self._clock = StepClock(pl_module.device)
        self._clock.mark("start")

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        assert self._clock is not None
        self._clock.mark("end")

    def on_train_end(self, trainer, pl_module) -> None:
        if self._clock is not None:
            self.starts, self.ends = self._clock.times()

    def summary(self, warmup: int, samples_per_step: int) -> dict:
        """Figures over the steps after ``warmup`` (see :func:`step_figures`)."""
        return step_figures(self.starts, self.ends, warmup, samples_per_step)


def step_figures(
    starts: list[float], ends: list[float], warmup: int, samples_per_step: int
) -> dict:
    """Throughput and data wait of the steps after ``warmup`` from each step's start and
    end time (seconds): a step lasts from the previous step's end to its own end, and
    waits from the previous step's end to its own start."""
    ends_a, starts_a = np.array(ends), np.array(starts)
    if len(ends_a) <= warmup:
        raise RuntimeError(f"only {len(ends_a)} steps ran, {warmup} are warm-up")
    steps = np.diff(ends_a[warmup - 1 :]) if warmup else np.diff(ends_a)
    waits = starts_a[warmup:] - ends_a[warmup - 1 : -1] if warmup else starts_a[1:] - ends_a[:-1]
    total, median = float(steps.sum()), float(np.median(steps))
    return {
        "timed_steps": len(steps),
        # the warm-up steps, first step's start to last warm-up step's end: with
        # --compile, the compilation is in here
        "warmup_s": float(ends_a[warmup - 1] - starts_a[0]) if warmup else 0.0,
        "images_per_s": samples_per_step * len(steps) / total,
        "images_per_s_median": samples_per_step / median,
        "step_s_median": median,
        "data_wait_share": float(waits.sum() / total),
        "step_ms": [round(1e3 * float(s), 2) for s in steps],
        "wait_ms": [round(1e3 * float(w), 2) for w in waits],
    }


class _PreMade(Dataset):
    """The same pre-made batch, ``length`` times (``batch_size=None`` loader)."""

    def __init__(self, batch: dict[str, torch.Tensor], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.batch


def _synthetic_batch(cfg: BenchConfig) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shape = (cfg.batch, 1, cfg.size, cfg.size)
    if cfg.kind == "pretrain":
        return {
            "view1": torch.randn(shape, generator=gen),
            "view2": torch.randn(shape, generator=gen),
        }
    label = torch.randint(0, SYNTHETIC_CLASSES, (cfg.batch, cfg.size, cfg.size), generator=gen)
    return {"image": torch.randn(shape, generator=gen), "label": label}


def run_config(cfg: BenchConfig) -> PretrainConfig | FinetuneConfig:
    """The run config a benchmark times: the ``paper`` preset (with ``method``'s recipe
    for pretraining) with the benchmark's encoder, crop, batch and runtime, sized to
    ``warmup + steps`` steps."""
    total = cfg.warmup + cfg.steps
    common = {"arch": cfg.arch, "crop": cfg.size, "batch_size": cfg.batch, "runtime": cfg.runtime}
    if cfg.kind == "pretrain":
        base = pretrain_preset("paper", cfg.method)
        return dataclasses.replace(base, **common, max_steps=total, epochs=1000)
    if cfg.kind == "finetune":
        base = preset(FinetuneConfig, FINETUNE_PRESETS, "paper")
        return dataclasses.replace(base, **common, steps=total)
    raise ConfigError(f"unknown bench kind {cfg.kind!r} (pretrain, finetune)")


def _run_kind(run: PretrainConfig | FinetuneConfig) -> RunKind:
    return PretrainRun(run) if isinstance(run, PretrainConfig) else FinetuneRun(run)


def _synthetic_module(kind: RunKind, cfg: BenchConfig, run_dir: Path) -> L.LightningModule:
    """A module of the run's config without a dataset (the batches come pre-made)."""
    run, total = kind.cfg, cfg.warmup + cfg.steps
    if isinstance(kind, PretrainRun):
        method, _ = build_method(run, lambda encoder: None)
        return PretrainModule(run, method, _PreMade({}, cfg.batch * total))
    unet = build_unet(cfg.arch, SYNTHETIC_CLASSES, run.decoder_channels)
    return SegmentationModule(run, unet, _PreMade({}, 1), [], SYNTHETIC_CLASSES, run_dir)


def device_name(accelerator: str = "auto") -> str:
    """A human description of the device that runs the steps."""
    if uses_gpu(accelerator):
        return torch.cuda.get_device_name(0)
    model = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    listed = "".join(f", {name}" for name in cpu_features())
    return f"{model} ({torch.get_num_threads()} threads{listed})"


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def bench(cfg: BenchConfig) -> dict:
    """Time ``cfg.steps`` training steps after ``cfg.warmup``; return the figures."""
    apply_blas_settings()
    if cfg.steps < 1 or cfg.warmup < 0:
        raise ConfigError("bench needs steps ≥ 1 and warmup ≥ 0")
    if not cfg.data and not cfg.synthetic:
        raise ConfigError("bench needs --data (or --synthetic)")
    kind = _run_kind(run_config(cfg))
    cache = resolve_cache(cfg.data) if cfg.data and not cfg.synthetic else None
    total = cfg.warmup + cfg.steps
    L.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory(prefix="medssl-bench-") as tmp:
        run = RunDir(tmp)
        if cache is None:
            module = _synthetic_module(kind, cfg, run.path)
        else:
            module, _ = kind.build(cache, run_split(cache, kind.cfg), run)
        timer = StepTimer()
        trainer = make_trainer(
            kind,
            module,
            [timer],
            logger=False,
            progress=False,
            max_steps=total,
            max_epochs=1000,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=tmp,
        )
        loader = None
        if cfg.synthetic:
            loader = DataLoader(_PreMade(_synthetic_batch(cfg), total), batch_size=None)
        trainer.fit(module, train_dataloaders=loader)
    figures = timer.summary(cfg.warmup, cfg.batch * cfg.runtime.devices)
    precision, why = precision_choice(cfg.runtime)
    bank = module.device_augment.bank
    runtime = cfg.runtime
    return {
        "bench": cfg.kind,
        "method": cfg.method if cfg.kind == "pretrain" else None,
        **figures,
        "device": device_name(runtime.accelerator),
        "precision": precision,
        "precision_reason": why,
        "channels_last": runtime.channels_last,
        "augment": "synthetic" if cfg.synthetic else runtime.augment,
        "arch": cfg.arch,
        "size": cfg.size,
        "batch": cfg.batch,
        "num_workers": runtime.num_workers,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cache_mb": None if cache is None else round(cache_bytes(cache) / 2**20, 3),
        "bank_mb": None if bank is None or cfg.synthetic else round(bank.nbytes / 2**20, 3),
        "torch": torch.__version__,
        "config": asdict(cfg),
    }


def cache_bytes(cache: SliceCache) -> int:
    """Size of a cache's packed image and label arrays."""
    files = CachePaths(cache.path)
    return sum(path.stat().st_size for path in (files.images, files.labels))
