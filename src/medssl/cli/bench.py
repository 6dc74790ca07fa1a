"""``medssl bench``: time full training steps and print one JSON line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medssl.training.bench import BenchConfig


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """The :class:`~medssl.training.bench.BenchConfig` of parsed ``medssl bench`` options
    (shared with ``benchmarks/profile_step.py``)."""
    from medssl.configs import RuntimeConfig
    from medssl.training.bench import BenchConfig

    runtime = RuntimeConfig(
        precision=args.precision,
        channels_last=not args.no_channels_last,
        augment=args.augment,
        num_workers=args.num_workers,
        accelerator=args.accelerator,
        devices=args.devices,
        compile=args.compile,
        cudnn_benchmark=args.cudnn_benchmark,
    )
    return BenchConfig(
        kind=args.kind,
        method=args.method,
        data=str(args.data or ""),
        arch=args.arch,
        size=args.size,
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        synthetic=args.synthetic,
        runtime=runtime,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from medssl.training.bench import bench

    print(json.dumps(bench(bench_config(args))), flush=True)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``bench``."""
    p = sub.add_parser("bench", help="time full training steps; print one JSON line")
    p.add_argument("kind", choices=["pretrain", "finetune"])
    p.add_argument(
        "--method", default="byol", help="pretraining method (pretrain only; see pretrain --help)"
    )
    p.add_argument("--data", type=Path, help="cache or source folder")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=128, help="crop side (pixels)")
    p.add_argument("--batch", type=int, default=16, help="per-device batch")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument(
        "--synthetic", action="store_true", help="feed a pre-made batch (no input pipeline)"
    )
    p.add_argument("--precision", default="auto", help="auto | 32-true | bf16-mixed | 16-mixed")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--augment", choices=["device", "workers"], default="device")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument(
        "--cudnn-benchmark", action="store_true", help="let cuDNN pick convolution algorithms"
    )
    p.set_defaults(func=_cmd_bench)
