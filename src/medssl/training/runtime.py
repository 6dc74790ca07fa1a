"""Hardware-dependent choices: the Lightning trainer arguments common to every run kind."""

from __future__ import annotations

import logging

from medssl.configs import RuntimeConfig, world_size
from medssl.hardware import resolve_precision, uses_gpu

log = logging.getLogger(__name__)

__all__ = ["resolve_precision", "trainer_kwargs", "world_size"]


def trainer_kwargs(runtime: RuntimeConfig) -> dict:
    """Lightning ``Trainer`` arguments common to every run kind."""
    ddp = world_size(runtime) > 1
    on_gpu = uses_gpu(runtime.accelerator)
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
