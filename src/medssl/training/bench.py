"""Throughput benchmark of full training steps (``medssl bench``).

A benchmark builds the same Lightning module and trainer settings as a real run
(:func:`medssl.training.pretrain.build_byol_module`,
:func:`medssl.training.finetune.build_segmentation_module`), runs ``warmup + steps``
optimisation steps and times the last ``steps``:

- ``images_per_s``: samples per second over the timed steps (for BYOL one sample is
  two views of one slice), all devices together;
- ``data_wait_share``: the share of step time between the end of one step and the
  start of the next, i.e. waiting for the DataLoader, the host-to-device copy and the
  batched on-device augmentation (everything that is not forward/backward/optimiser);
- ``peak_rss_mb``: the process's peak resident memory (and its workers').

The timer adds no host synchronisation (:class:`StepClock`: on a GPU the steps are
timed with CUDA events on its timeline). ``synthetic=True`` feeds one pre-made batch of
augmented tensors instead of the dataset, which isolates the cost of the input
pipeline (compare both figures). ``step_ms`` and ``wait_ms`` list every timed step.
"""

from __future__ import annotations

import logging
import platform
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from medssl.configs import (
    FINETUNE_PRESETS,
    PRETRAIN_PRESETS,
    FinetuneConfig,
    PretrainConfig,
    cpu_has_amx,
    preset,
    resolve_precision,
)
from medssl.data.cache_read import SliceCache
from medssl.data.resolve import resolve_cache
from medssl.data.splits import split_for_cache, unlabelled_pool
from medssl.models.byol import BYOL
from medssl.models.encoders import create_encoder
from medssl.models.unet import build_unet
from medssl.overrides import ConfigError
from medssl.training.byol_module import BYOLModule
from medssl.training.reproducible import apply_blas_settings
from medssl.training.runtime import trainer_kwargs

log = logging.getLogger(__name__)

SYNTHETIC_CLASSES = 4


@dataclass(frozen=True)
class BenchConfig:
    """What to time.

    Attributes:
        kind: ``pretrain`` (BYOL step) or ``finetune`` (U-Net step).
        data: source folder or prepared cache (may be empty with ``synthetic``).
        arch: timm encoder.
        size: crop side in pixels.
        batch: per-device batch.
        steps: timed steps.
        warmup: untimed steps first (allocator, autotuning, worker start-up).
        synthetic: feed a pre-made batch instead of the data pipeline.
        precision, channels_last, augment, num_workers, accelerator, devices,
        compile, cudnn_benchmark: the run's :class:`~medssl.configs.RuntimeConfig` fields.
    """

    kind: Literal["pretrain", "finetune"] = "finetune"
    data: str = ""
    arch: str = "resnet50"
    size: int = 128
    batch: int = 16
    steps: int = 20
    warmup: int = 3
    synthetic: bool = False
    precision: str = "auto"
    channels_last: bool = True
    augment: Literal["device", "workers"] = "device"
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int = 1
    compile: bool = False
    cudnn_benchmark: bool = False


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
    total = float(steps.sum())
    return {
        "timed_steps": len(steps),
        "images_per_s": samples_per_step * len(steps) / total,
        "step_s_median": float(np.median(steps)),
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


def _runtime_overrides(cfg: BenchConfig) -> list[str]:
    return [
        f"arch={cfg.arch}",
        f"crop={cfg.size}",
        f"batch_size={cfg.batch}",
        f"runtime.precision={cfg.precision}",
        f"runtime.channels_last={cfg.channels_last}",
        f"runtime.augment={cfg.augment}",
        f"runtime.num_workers={cfg.num_workers}",
        f"runtime.accelerator={cfg.accelerator}",
        f"runtime.devices={cfg.devices}",
        f"runtime.compile={cfg.compile}",
        f"runtime.cudnn_benchmark={cfg.cudnn_benchmark}",
    ]


def _pretrain_module(cfg: BenchConfig, cache: SliceCache | None, total: int) -> L.LightningModule:
    from medssl.training.pretrain import build_byol_module

    run = preset(
        PretrainConfig,
        PRETRAIN_PRESETS,
        "paper",
        [*_runtime_overrides(cfg), f"max_steps={total}", "epochs=1000"],
    )
    if cache is None:
        byol = BYOL(create_encoder(cfg.arch, in_chans=1), run.heads)
        return BYOLModule(run, byol, _PreMade({}, cfg.batch * total))
    split = split_for_cache(cache, run.split_seed)
    module, _ = build_byol_module(run, cache, unlabelled_pool(cache, split.train))
    return module


def _finetune_module(
    cfg: BenchConfig, cache: SliceCache | None, total: int, run_dir: Path
) -> L.LightningModule:
    from medssl.training.finetune import build_segmentation_module
    from medssl.training.segment_module import SegmentationModule

    run = preset(
        FinetuneConfig, FINETUNE_PRESETS, "paper", [*_runtime_overrides(cfg), f"steps={total}"]
    )
    if cache is None:
        unet = build_unet(cfg.arch, SYNTHETIC_CLASSES, run.decoder_channels)
        return SegmentationModule(run, unet, _PreMade({}, 1), [], SYNTHETIC_CLASSES, run_dir)
    split = split_for_cache(cache, run.split_seed)
    from medssl.training.finetune import select_budget

    module, _ = build_segmentation_module(
        run, cache, select_budget(cache, split, run), split.val, run_dir
    )
    return module


def device_name(accelerator: str = "auto") -> str:
    """A human description of the device that runs the steps."""
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    amx = ", AMX" if cpu_has_amx() else ""
    return f"{model} ({torch.get_num_threads()} threads{amx})"


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
    cache = resolve_cache(cfg.data) if cfg.data and not cfg.synthetic else None
    total = cfg.warmup + cfg.steps
    L.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory(prefix="medssl-bench-") as tmp:
        if cfg.kind == "pretrain":
            module = _pretrain_module(cfg, cache, total)
        elif cfg.kind == "finetune":
            module = _finetune_module(cfg, cache, total, Path(tmp))
        else:
            raise ConfigError(f"unknown bench kind {cfg.kind!r} (pretrain, finetune)")
        timer = StepTimer()
        runtime = module.cfg.runtime
        trainer = L.Trainer(
            max_steps=total,
            max_epochs=1000,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            callbacks=[timer],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            gradient_clip_val=getattr(module.cfg, "grad_clip", None),
            default_root_dir=tmp,
            **trainer_kwargs(runtime),
        )
        loader = None
        if cfg.synthetic:
            loader = DataLoader(_PreMade(_synthetic_batch(cfg), total), batch_size=None)
        trainer.fit(module, train_dataloaders=loader)
    figures = timer.summary(cfg.warmup, cfg.batch * cfg.devices)
    bank = getattr(module, "_bank", None)
    return {
        "bench": cfg.kind,
        **figures,
        "device": device_name(cfg.accelerator),
        "precision": resolve_precision(runtime),
        "channels_last": cfg.channels_last,
        "augment": "synthetic" if cfg.synthetic else cfg.augment,
        "arch": cfg.arch,
        "size": cfg.size,
        "batch": cfg.batch,
        "num_workers": cfg.num_workers,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cache_mb": None if cache is None else round(cache_bytes(cache) / 2**20, 3),
        "bank_mb": None if bank is None or cfg.synthetic else round(bank.nbytes / 2**20, 3),
        "torch": torch.__version__,
        "config": asdict(cfg),
    }


def cache_bytes(cache: SliceCache) -> int:
    """Size of a cache's packed image and label arrays."""
    return sum((cache.path / name).stat().st_size for name in ("images.bin", "labels.bin"))
