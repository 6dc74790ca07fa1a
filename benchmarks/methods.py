"""Pretraining throughput of every registry method, in one run on this machine.

Each method's ``medssl bench pretrain --method NAME`` runs in its own process with its
published recipe (heads, queue, prototypes, U-Net for ``mim``); the methods run in
turn and the whole round repeats, so every method sees the same machine drift. Prints
a Markdown table (median and min–max samples/s, the ratio to BYOL's median measured
in the same run) and writes every JSON line to ``--jsonl``.

    python benchmarks/methods.py --data ../shared/acdc --repeats 2 \\
        --jsonl benchmarks/results/cpu-methods-r50-128-b16.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from medssl.configs import METHODS


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", default="auto")
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    p.add_argument("--jsonl", type=Path)
    args = p.parse_args()
    common = ["--data", args.data, "--arch", "resnet50", "--size", "128", "--batch", "16"]
    common += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    common += ["--precision", args.precision]
    rows: dict[str, list[dict]] = {m: [] for m in args.methods}
    for _ in range(args.repeats):
        for method in args.methods:
            cmd = [sys.executable, "-m", "medssl", "bench", "pretrain", "--method", method]
            out = subprocess.run([*cmd, *common], capture_output=True, text=True, check=True)
            line = json.loads(out.stdout.strip().splitlines()[-1])
            rows[method].append(line)
            print(f"{method}: {line['images_per_s']:.2f} samples/s", file=sys.stderr, flush=True)
            if args.jsonl:
                args.jsonl.parent.mkdir(parents=True, exist_ok=True)
                with args.jsonl.open("a") as fh:
                    fh.write(json.dumps(line) + "\n")
    first = next(iter(rows.values()))[0]
    print(f"device: {first['device']}; precision {first['precision']}; torch {first['torch']}")
    base = statistics.median(r["images_per_s"] for r in rows.get("byol", rows[args.methods[0]]))
    print("| method | kind | samples/s median (min–max, n) | × byol | data wait | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for method, runs in rows.items():
        rates = [r["images_per_s"] for r in runs]
        med = statistics.median(rates)
        wait = statistics.median(r["data_wait_share"] for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        print(
            f"| {method} | {METHODS[method].kind} | {med:.2f} ({min(rates):.2f}–{max(rates):.2f}, "
            f"{len(rates)}) | {med / base:.2f} | {wait:.1%} | {rss:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
