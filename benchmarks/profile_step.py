"""Where a training step's time goes: the real ``medssl bench`` step under torch's profiler.

Runs :func:`medssl.training.bench.bench` (the same Lightning module, data path and
precision as ``medssl bench``) inside ``torch.profiler`` and sorts every operator's own
CPU time into categories: convolution forward, convolution backward, batch norm (both
directions), the optimiser step (everything under ``Optimizer.step``), autocast's dtype
casts, the data path (batch transfer and augmentation), and the rest. The shares bound
what a lever can buy: removing a category entirely speeds the step up by at most
``1 / (1 − share)``.

    python benchmarks/profile_step.py finetune --data ../shared/acdc \\
        --arch resnet50 --size 128 --batch 16 --steps 6 --jsonl benchmarks/results/profile.jsonl

Takes every ``medssl bench`` option (same parser, same defaults) plus ``--jsonl``. Prints
a Markdown table; ``--jsonl`` appends the figures with the device and settings.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from medssl.cli import build_parser
from medssl.cli.bench import bench_config
from medssl.training.bench import bench

#: category → operator names (own CPU time of those operators; checked in this order)
CATEGORIES = {
    "conv backward": ("aten::convolution_backward",),
    "conv forward": ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution"),
    "batch norm": (
        "aten::native_batch_norm",
        "aten::native_batch_norm_backward",
        "aten::batch_norm",
        "aten::_batch_norm_impl_index",
    ),
    "dtype casts": ("aten::copy_", "aten::_to_copy", "aten::to"),
}
#: the recorded functions this script adds (see :func:`_mark`); an operator under
#: ``Optimizer.step`` but outside the loss closure is the optimiser's update (with
#: gradient clipping, which Lightning runs there)
CLOSURE, DATA = "medssl.profile.closure", "medssl.profile.data"


def _mark() -> None:
    """Name the loss closure and the batched augmentation in the profile."""
    from lightning.pytorch.loops.optimization import automatic
    from torch.profiler import record_function

    from medssl.training.device_augment import DeviceAugment

    def wrap(cls, name: str) -> None:
        call = cls.__call__

        def marked(self, *a, **k):
            with record_function(name):
                return call(self, *a, **k)

        cls.__call__ = marked

    wrap(automatic.Closure, CLOSURE)
    wrap(DeviceAugment, DATA)


def _enclosing(event) -> str | None:
    names, parent = [], event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    if DATA in names:
        return "data path (augmentation)"
    if CLOSURE not in names and any(n.startswith("Optimizer.step") for n in names):
        return "optimiser step (+ clipping)"
    return None


def categorise(events, others: dict[str, float] | None = None) -> dict[str, float]:
    """Own CPU time (ms) per category over profiler ``events`` (leaf attribution: each
    operator's self time goes to its enclosing category, else to its name's); the
    operators of "other" are summed by name into ``others`` when given."""
    totals: dict[str, float] = defaultdict(float)
    for ev in events:
        if ev.device_type.name != "CPU" or ev.self_cpu_time_total <= 0:
            continue
        category = _enclosing(ev)
        if category is None:
            category = next((c for c, names in CATEGORIES.items() if ev.name in names), "other")
        totals[category] += ev.self_cpu_time_total / 1000
        if category == "other" and others is not None:
            others[ev.name] = others.get(ev.name, 0.0) + ev.self_cpu_time_total / 1000
    return dict(totals)


def main() -> None:
    own = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=False)
    own.add_argument("--jsonl", type=Path)
    mine, rest = own.parse_known_args()
    # every other option is ``medssl bench``'s, parsed and turned into a config by the CLI
    args = build_parser().parse_args(["bench", *rest])
    cfg = bench_config(args)
    _mark()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        figures = bench(cfg)
    others: dict[str, float] = {}
    ms = categorise(prof.events(), others)
    total = sum(ms.values())
    print(
        f"{figures['device']}, {figures['precision']}, {cfg.kind} {cfg.arch} "
        f"{cfg.size} px batch {cfg.batch} ({cfg.steps} timed + {cfg.warmup} warm-up steps)"
    )
    print("| category | own CPU ms | share | step speed-up if it cost nothing |")
    print("|---|---|---|---|")
    for name, value in sorted(ms.items(), key=lambda kv: -kv[1]):
        share = value / total
        bound = f"{1 / (1 - share):.2f}×" if share < 1 else "∞"
        print(f"| {name} | {value:.0f} | {share:.1%} | {bound} |")
    top = sorted(others.items(), key=lambda kv: -kv[1])[:8]
    print("largest in 'other': " + ", ".join(f"{n} {v / total:.1%}" for n, v in top))
    if mine.jsonl:
        mine.jsonl.parent.mkdir(parents=True, exist_ok=True)
        row = {
            "profile_ms": ms,
            "share": {k: v / total for k, v in ms.items()},
            "other_top_ms": dict(top),
            **figures,
        }
        with mine.jsonl.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
