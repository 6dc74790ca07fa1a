#!/usr/bin/env bash
# Short real-data fine-tune, fast path (bf16 autocast, channels_last, batched in-memory
# augmentation) vs the fp32 path (fp32, NCHW, per-sample augmentation in workers):
# the validation Dice must agree within 0.01. Usage: bash benchmarks/accuracy_fast_vs_fp32.sh [DATA] [OUT]
set -euo pipefail
DATA=${1:-../shared/acdc}
OUT=${2:-runs/accuracy}
COMMON=(--data "$DATA" --preset cpu-small --set steps=600 --set val_every_steps=150 --set warmup_steps=30)
medssl finetune "${COMMON[@]}" --out "$OUT/fast"
medssl finetune "${COMMON[@]}" --out "$OUT/fp32" \
  --set runtime.precision=32-true --set runtime.channels_last=false --set runtime.augment=workers
python - "$OUT" <<'PY'
import csv, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = {k: list(csv.DictReader((out / k / "curve.csv").open())) for k in ("fast", "fp32")}
print("step  val Dice fast  val Dice fp32  |diff|")
for a, b in zip(rows["fast"], rows["fp32"]):
    da, db = float(a["dice/mean"]), float(b["dice/mean"])
    print(f"{a['step']:>5}  {da:.4f}         {db:.4f}         {abs(da - db):.4f}")
PY
