#!/usr/bin/env bash
# Short real-data fine-tunes, fast path (bf16 autocast, channels_last, batched in-memory
# augmentation) vs the fp32 path (fp32, NCHW, per-sample augmentation in workers), one
# pair per seed: the mean validation Dice of the two arms must agree within 0.01.
#
#   bash benchmarks/accuracy_fast_vs_fp32.sh [DATA] [OUT] [SEEDS]
#
# SEEDS defaults to "0 1 2" (runtime.seed: initialisation, sampling, augmentation; the
# split is the same). Finished runs are kept and skipped, so a killed comparison resumes.
set -euo pipefail
DATA=${1:-../shared/acdc}
OUT=${2:-runs/accuracy}
SEEDS=${3:-0 1 2}
COMMON=(--data "$DATA" --preset cpu-small --set steps=600 --set val_every_steps=150 --set warmup_steps=30)
FP32=(--set runtime.precision=32-true --set runtime.channels_last=false --set runtime.augment=workers)
for seed in $SEEDS; do
  for arm in fast fp32; do
    run="$OUT/$arm-seed$seed"
    [[ -f "$run/result.json" ]] && continue
    extra=()
    [[ $arm == fp32 ]] && extra=("${FP32[@]}")
    medssl finetune "${COMMON[@]}" --set "runtime.seed=$seed" "${extra[@]}" --out "$run" --resume
  done
done
python - "$OUT" $SEEDS <<'PY'
import csv, statistics, sys
from pathlib import Path

out, seeds = Path(sys.argv[1]), sys.argv[2:]
def curve(arm, seed):
    rows = csv.DictReader((out / f"{arm}-seed{seed}" / "curve.csv").open())
    return {int(r["step"]): float(r["dice/mean"]) for r in rows}
curves = {(a, s): curve(a, s) for a in ("fast", "fp32") for s in seeds}
steps = sorted(curves["fast", seeds[0]])
print("validation Dice (pixel, mean of the foreground classes), per seed and mean ± sd")
print(f"{'step':>5}  {'fast':<34}  {'fp32':<34}  mean diff")
for step in steps:
    cols = []
    for arm in ("fast", "fp32"):
        vals = [curves[arm, s][step] for s in seeds]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        cols.append((" ".join(f"{v:.3f}" for v in vals), statistics.mean(vals), sd))
    diff = cols[0][1] - cols[1][1]
    print(f"{step:>5}  " + "  ".join(f"{v} ({m:.3f}±{sd:.3f})" for v, m, sd in cols)
          + f"  {diff:+.4f}")
PY
