#!/usr/bin/env bash
# Issue 17, item 3: the GPU targets (ResNet-50, 224 px, batch 256, bf16) on the FULL real
# ACDC training split (80 patients, 1498 slices), medians of 3 runs, in two calls of one
# lent machine. A call carries at most 64 MiB with the working tree (≈24 MiB), so the
# data travels as 8-bit PNG in three parts (benchmarks/gpu_data.py, ≈16 MiB each) and
# the packages the machine lacks as wheels (≈11 MiB); what call 1 unpacks and installs
# into the ignored .gpu-src/ and .gpu-site/ stays on the warm machine for call 2.
#
# Here, once (≈2 min):
#   printf '/.gpu-data/\n/.gpu-src/\n/.gpu-site/\n/.whl/\n' >> .git/info/exclude
#   python benchmarks/gpu_data.py pack ../shared/acdc .gpu-data --split-of ../shared/acdc --part-mb 16
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     segmentation-models-pytorch==0.6.0 monai==1.6.1 nibabel==5.4.2 lightly==1.6.0 \
#     pydicom==3.0.2 highdicom==0.28.2 pyjpegls==1.5.1
# Device call 1 (carry [".whl", ".gpu-data/part1"], timeout_s 230):
#   bash benchmarks/gpu_round2.sh 1 "$OUT" 200
# Device call 2, at once (a warm machine waits 30 s; carry [".gpu-data/part2",
# ".gpu-data/part3"], timeout_s 470):
#   bash benchmarks/gpu_round2.sh 2 "$OUT" 440
# With the machine's start (1–2 min) that is ≈13 of a session's 15 device minutes.
#
# Call 1: install the wheels, unpack part 1, the GPU's facts, one compiled BYOL run on
# part 1 (its warm-up time is the cold compilation; inductor's cache then shortens call
# 2's), the CUDA tests. Call 2: unpack parts 2 and 3, count the volumes (160 expected;
# summary.md says how many there were), then medssl eager ×3 for both kinds alternating,
# BYOL compiled ×3, fine-tuning compiled ×1; summary.md has the medians and the data
# wait at BYOL's epoch starts.
set -u
CALL=${1:?usage: gpu_round2.sh 1|2 OUTDIR [SECONDS]}
OUT=${2:?usage: gpu_round2.sh 1|2 OUTDIR [SECONDS]}
BUDGET=${3:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=.gpu-src
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/.gpu-site:$PWD/src:${PYTHONPATH:-}"
if [ "$CALL" = 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target .gpu-site .whl/*.whl >"$OUT/install.txt" 2>&1 ||
    echo "wheel install failed (install.txt)" >>"$OUT/failed.txt"
  PARTS="1"
else
  PARTS="2 3"
fi
for n in $PARTS; do
  $PY "$HERE/gpu_data.py" unpack ".gpu-data/part$n" "$SRC" >>"$OUT/progress.txt" 2>&1 ||
    echo "unpack of part $n failed" >>"$OUT/failed.txt"
done
VOLUMES=$(find "$SRC" -name '*.h5' | wc -l)
echo "call $CALL: $VOLUMES volumes in $SRC" >>"$OUT/progress.txt"

if [ "$CALL" = 1 ]; then
  STEPS_LIST="medssl pretrain compile;tests" bash "$HERE/gpu_session.sh" "$SRC" "$OUT" "$BUDGET"
  mv "$OUT/runs.jsonl" "$OUT/runs-call1.jsonl" 2>/dev/null
  exit 0
fi
# ";"-separated "STACK KIND [LEVER]", ordered by value: what the budget cuts is the tail
E="medssl pretrain;medssl finetune"
C="medssl pretrain compile"
STEPS_LIST="$E;$E;$E;$C;$C;$C;medssl finetune compile" \
  bash "$HERE/gpu_session.sh" "$SRC" "$OUT" "$BUDGET"
# BYOL steps per epoch: the pretraining pool of what arrived (1498 slices → 5 steps of 256)
EPOCH_STEPS=$($PY -c "import sys
from medssl.data.resolve import resolve_cache
from medssl.data.splits import default_split, unlabelled_pool
c = resolve_cache(sys.argv[1])
print(len(unlabelled_pool(c, default_split(c).train)) // int(sys.argv[2]))" \
  "$SRC" "${BATCH:-256}" 2>>"$OUT/stderr.txt")
{
  echo "data: $VOLUMES of 160 volumes (ACDC training split, 8-bit), $SRC; $EPOCH_STEPS steps per BYOL epoch"
  $PY "$HERE/gpu_summary.py" "$OUT/runs.jsonl" --epoch-steps "${EPOCH_STEPS:-5}"
} >"$OUT/summary.md" 2>&1
