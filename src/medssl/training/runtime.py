"""Hardware-dependent choices: precision, Lightning trainer arguments, atomic files."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

from medssl.configs import RuntimeConfig

log = logging.getLogger(__name__)


@functools.cache
def cpu_has_amx() -> bool:
    """True when the CPU advertises AMX-BF16 (bf16 matmuls run several times fp32 speed)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def resolve_precision(runtime: RuntimeConfig) -> str:
    """``auto`` → bf16 autocast on bf16-capable GPUs or AMX CPUs, fp16 on older GPUs,
    fp32 otherwise; other values are passed to Lightning unchanged."""
    if runtime.precision != "auto":
        return runtime.precision
    wants_gpu = runtime.accelerator in ("auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_amx() else "32-true"


def world_size(runtime: RuntimeConfig) -> int:
    """Total processes of a run (devices per node × nodes)."""
    return runtime.devices * runtime.num_nodes


def trainer_kwargs(runtime: RuntimeConfig) -> dict:
    """Lightning ``Trainer`` arguments common to every run kind."""
    ddp = world_size(runtime) > 1
    on_gpu = runtime.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return {
        "accelerator": runtime.accelerator,
        "devices": runtime.devices,
        "num_nodes": runtime.num_nodes,
        "precision": resolve_precision(runtime),
        "strategy": "ddp" if ddp else "auto",
        "sync_batchnorm": ddp and on_gpu,  # torch's SyncBatchNorm needs CUDA (gloo: per-rank BN)
        "use_distributed_sampler": False,  # EpochSampler shards by rank itself
        "deterministic": False,
        "benchmark": runtime.cudnn_benchmark and on_gpu,
    }


def atomic_replace(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` then rename it over ``final`` (readers see the old or the new file)."""
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
