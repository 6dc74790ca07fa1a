"""medssl against the original stack, side by side in one run, plus each lever alone.

Every configuration runs in its own process (clean memory figures, no warm caches
shared between stacks); the baseline and medssl runs alternate so that both see the
same machine load. Prints a Markdown table (median and min–max of images/s over the
repeats, the ratio of medians) and writes every JSON line to ``--jsonl``.

    python benchmarks/throughput.py --data ../shared/acdc --repeats 3 \\
        --jsonl benchmarks/results/cpu-r50-128.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _medssl(kind: str, common: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "medssl", "bench", kind, *common, *extra]


def _baseline(kind: str, common: list[str]) -> list[str]:
    return [sys.executable, str(HERE / "baseline_stack.py"), kind, *common, "--num-workers", "2"]


def configurations(kind: str, common: list[str]) -> dict[str, list[str]]:
    """Name → command; ``baseline`` and ``medssl`` are the two stacks compared (the last
    lever, batched augmentation in memory, is ``medssl`` itself: see :data:`ALIASES`)."""
    return {
        "baseline": _baseline(kind, common),
        "medssl": _medssl(kind, common),
        "medssl fp32, NCHW, CPU workers": _medssl(
            kind,
            common,
            "--precision",
            "32-true",
            "--no-channels-last",
            "--augment",
            "workers",
            "--num-workers",
            "2",
        ),
        "+ bf16 autocast": _medssl(
            kind, common, "--no-channels-last", "--augment", "workers", "--num-workers", "2"
        ),
        "+ channels_last": _medssl(kind, common, "--augment", "workers", "--num-workers", "2"),
        "medssl, synthetic batches": _medssl(kind, common, "--synthetic"),
    }


# rows of the table that repeat another configuration's runs under a lever's name
ALIASES = {"+ batched augmentation in memory (= medssl)": "medssl"}


def run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def add_common_arguments(
    p: argparse.ArgumentParser, repeats_help: str = "runs of each configuration"
) -> None:
    """The options every throughput script shares (data, model, sizes, repeats, kinds)."""
    p.add_argument("--data", required=True)
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help=repeats_help)
    p.add_argument("--kinds", default="finetune,pretrain")


def common_options(args: argparse.Namespace) -> list[str]:
    """``medssl bench`` / baseline options from :func:`add_common_arguments`' values."""
    return [
        "--data", args.data, "--arch", args.arch, "--size", str(args.size),
        "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_common_arguments(p, "runs of each stack (levers: 1)")
    p.add_argument("--jsonl", type=Path)
    args = p.parse_args()
    common = common_options(args)
    rows = []
    for kind in args.kinds.split(","):
        configs = configurations(kind, common)
        results: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name in ("baseline", "medssl"):
                results[name].append(run(configs[name]))
                print(name, kind, f"{results[name][-1]['images_per_s']:.2f}", file=sys.stderr)
        for name, cmd in configs.items():
            if not results[name]:
                results[name].append(run(cmd))
        for alias, name in ALIASES.items():
            results[alias] = results[name]
        base = statistics.median(r["images_per_s"] for r in results["baseline"])
        for name, runs in results.items():
            rates = [r["images_per_s"] for r in runs]
            med = statistics.median(rates)
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    "median": med,
                    "min": min(rates),
                    "max": max(rates),
                    "n": len(rates),
                    "ratio": med / base,
                    "wait": statistics.median(r["data_wait_share"] for r in runs),
                    "rss": max(r["peak_rss_mb"] for r in runs),
                    "precision": runs[0]["precision"],
                    "device": runs[0]["device"],
                }
            )
            if args.jsonl:
                args.jsonl.parent.mkdir(parents=True, exist_ok=True)
                with args.jsonl.open("a") as fh:
                    for r in runs:
                        fh.write(json.dumps({"name": name, **r}) + "\n")
    print(f"device: {rows[0]['device']}; {args.arch}, {args.size} px, batch {args.batch}, ")
    print(f"{args.steps} timed steps after {args.warmup} warm-up, ACDC slices from {args.data}\n")
    print("| run | configuration | precision | images/s median (min–max, n) | × baseline "
          "| data wait | peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['name']} | {r['precision']} | {r['median']:.2f} "
            f"({r['min']:.2f}–{r['max']:.2f}, {r['n']}) | {r['ratio']:.2f} | "
            f"{100 * r['wait']:.1f} % | {r['rss']:.0f} |"
        )


if __name__ == "__main__":
    main()
