"""Issue 17, item 2 on an idle CPU: each remaining lever alone against medssl's default and
the original stack, alternating in one run (medians of ``--repeats``), then where the
time of the fine-tuning and BYOL steps goes (``profile_step.py``).

    python benchmarks/round2_cpu.py --data ../shared/acdc --repeats 3 \\
        --jsonl benchmarks/results/round2-cpu.jsonl

Levers are applied by ``benchmarks/lever.py`` (a patch of that process only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from throughput import _baseline, add_common_arguments, common_options, run  # noqa: E402


def configurations(kind: str, common: list[str]) -> dict[str, list[str]]:
    lever = [sys.executable, str(HERE / "lever.py")]
    configs = {
        "baseline": _baseline(kind, common),
        "medssl": [*lever, "none", kind, *common],
    }
    if kind == "finetune":
        configs["+ fused Adam on the CPU"] = [*lever, "fused-adam", kind, *common]
    return configs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--profile-steps", type=int, default=4)
    p.add_argument("--jsonl", type=Path, required=True)
    args = p.parse_args()
    common = common_options(args)
    args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    table = []
    for kind in args.kinds.split(","):
        configs = configurations(kind, common)
        results: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name, cmd in configs.items():
                figures = run(cmd)
                results[name].append(figures)
                with args.jsonl.open("a") as fh:
                    fh.write(json.dumps({"name": name, "kind": kind, **figures}) + "\n")
                print(name, kind, f"{figures['images_per_s']:.2f}", file=sys.stderr, flush=True)
        base = statistics.median(r["images_per_s"] for r in results["baseline"])
        ref = statistics.median(r["images_per_s"] for r in results["medssl"])
        for name, runs in results.items():
            rates = [r["images_per_s"] for r in runs]
            med = statistics.median(rates)
            table.append(
                f"| {kind} | {name} | {med:.2f} ({min(rates):.2f}–{max(rates):.2f}, "
                f"{len(rates)}) | {med / base:.2f} | {med / ref:.2f} | "
                f"{statistics.median(r['step_s_median'] for r in runs):.3f} |"
                if "step_s_median" in runs[0]
                else f"| {kind} | {name} | {med:.2f} ({min(rates):.2f}–{max(rates):.2f}, "
                f"{len(rates)}) | {med / base:.2f} | {med / ref:.2f} | — |"
            )
        device = results["medssl"][0]["device"]
    print(f"device: {device}; {args.arch}, {args.size} px, batch {args.batch}")
    print("| run | configuration | images/s median (min–max, n) | × baseline | × medssl "
          "| step s median |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print("\n".join(table))
    profile = args.jsonl.with_name(args.jsonl.stem + "-profile.jsonl")
    for kind in args.kinds.split(","):
        cmd = [sys.executable, str(HERE / "profile_step.py"), kind, *common[:-4]]
        cmd += ["--steps", str(args.profile_steps), "--warmup", "2", "--jsonl", str(profile)]
        print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


if __name__ == "__main__":
    main()
