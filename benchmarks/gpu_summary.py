"""Medians per configuration of a device session's ``runs.jsonl`` (one JSON line per
``medssl bench`` or ``baseline_stack.py`` run), as a Markdown table.

    python benchmarks/gpu_summary.py OUT/runs.jsonl [--epoch-steps 5]

For each configuration (run kind, stack, ``--compile``, synthetic or real batches):
runs, median images/s over the total time (min–max), images/s of the median step, data
wait share, and the warm-up time (which holds the compilation). ``--epoch-steps`` also
splits the data wait into the steps that start an epoch and the others (BYOL's epoch
starts; fine-tuning is one epoch), from each run's ``wait_ms``, counted from the first
step of the run including its warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def label(run: dict) -> tuple[str, str]:
    """``(kind, configuration)`` of one run line."""
    if run.get("stack") == "baseline":
        return run["bench"], "baseline"
    cfg = run.get("config", {})
    parts = ["medssl"]
    # runtime settings are under "runtime" (older lines: at the top of "config")
    parts += ["compile"] if cfg.get("runtime", cfg).get("compile") else []
    parts += ["synthetic"] if cfg.get("synthetic") else []
    return run["bench"], " + ".join(parts)


def epoch_start_waits(run: dict, epoch_steps: int) -> tuple[list[float], list[float]]:
    """The timed steps' waits (ms) of a medssl BYOL run on real data, split into the
    steps that start an epoch and the others (``([], [])`` for other runs)."""
    cfg = run.get("config")
    if run.get("bench") != "pretrain" or not cfg or cfg.get("synthetic"):
        return [], []
    # wait_ms[k] is the wait before step warmup + k (before step k + 1 without warm-up)
    first = cfg.get("warmup", 0) or 1
    starts, rest = [], []
    for k, wait in enumerate(run.get("wait_ms", [])):
        (starts if (first + k) % epoch_steps == 0 else rest).append(wait)
    return starts, rest


def _median_step_rate(run: dict) -> float:
    """Images/s of the median step (older lines lack the field: from ``step_s_median``)."""
    return run.get("images_per_s_median") or run["batch"] / run["step_s_median"]


def table(runs: list[dict], epoch_steps: int | None) -> str:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run in runs:
        groups[label(run)].append(run)
    head = "| run | configuration | n | images/s median (min–max) | median-step images/s "
    head += "| data wait | warm-up s |"
    rule = "|---|---|---|---|---|---|---|"
    if epoch_steps:
        head += " wait ms at epoch start / inside |"
        rule += "---|"
    lines = [head, rule]
    for (kind, config), group in sorted(groups.items()):
        ips = [r["images_per_s"] for r in group]
        row = (
            f"| {kind} | {config} | {len(group)} | {statistics.median(ips):.0f} "
            f"({min(ips):.0f}–{max(ips):.0f}) "
            f"| {statistics.median(_median_step_rate(r) for r in group):.0f} "
            f"| {100 * statistics.median(r['data_wait_share'] for r in group):.1f} % "
            f"| {statistics.median(r.get('warmup_s', float('nan')) for r in group):.1f} |"
        )
        if epoch_steps:
            split = [epoch_start_waits(r, epoch_steps) for r in group]
            at = [w for starts, _ in split for w in starts]
            inside = [w for _, rest in split for w in rest]
            first = f"{statistics.median(at):.1f}" if at else "–"
            second = f"{statistics.median(inside):.1f}" if inside else "–"
            row += f" {first} / {second} |"
        lines.append(row)
    devices = sorted({r.get("device", "?") for r in runs})
    return "\n".join([*lines, "", f"device: {', '.join(devices)}"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--epoch-steps", type=int, default=None)
    args = ap.parse_args(argv)
    runs = [json.loads(ln) for ln in args.jsonl.read_text().splitlines() if ln.startswith("{")]
    print(table(runs, args.epoch_steps))


if __name__ == "__main__":
    main()
