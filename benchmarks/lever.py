"""``medssl bench`` with one throughput lever patched in, to measure that lever alone.

    python benchmarks/lever.py fused-adam finetune --data ../shared/acdc --arch resnet50 \\
        --size 128 --batch 16

Levers (each a patch of this process only; medssl itself is unchanged):

- ``fused-adam``: ``torch.optim.Adam(..., fused=True)`` on the CPU too (medssl fuses Adam
  on GPUs only, see ``SegmentationModule.configure_optimizers``).
- ``none``: no patch (the same process path as the levers, for an even comparison).

Every other argument is ``medssl bench``'s; the figures are printed as its JSON line,
with ``"lever"`` added.
"""

from __future__ import annotations

import json
import sys

import torch


def fused_adam() -> None:
    original = torch.optim.Adam.__init__

    def init(self, params, *args, **kwargs):
        kwargs["fused"] = True
        original(self, params, *args, **kwargs)

    torch.optim.Adam.__init__ = init


LEVERS = {"fused-adam": fused_adam, "none": lambda: None}


def main() -> None:
    lever, rest = sys.argv[1], sys.argv[2:]
    if lever not in LEVERS:
        raise SystemExit(f"unknown lever {lever!r} (known: {', '.join(LEVERS)})")
    LEVERS[lever]()
    from medssl.cli import build_parser
    from medssl.cli.bench import bench_config
    from medssl.training.bench import bench

    cfg = bench_config(build_parser().parse_args(["bench", *rest]))
    print(json.dumps({"lever": lever, **bench(cfg)}), flush=True)


if __name__ == "__main__":
    main()
