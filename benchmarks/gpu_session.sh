#!/usr/bin/env bash
# One prepared GPU session (a lent machine is held for minutes, so everything is here):
# CUDA tests, then medssl against the original stack at ResNet-50, 224 px, batch 256.
#
#   bash benchmarks/gpu_session.sh DATA OUTDIR [SECONDS]
#
# DATA: ACDC source folder or prepared cache. OUTDIR gets gpu.txt, tests.txt,
# runs.jsonl (one JSON line per run, medssl bench's fields) and
# stderr.txt. Runs are ordered by value (STEPS_LIST picks others) and each is cut off so that the whole
# script ends within SECONDS (default 480); a run that fails or is cut off is
# listed in failed.txt and the next one starts.
set -u
DATA=${1:?usage: gpu_session.sh DATA OUTDIR [SECONDS]}
OUT=${2:?usage: gpu_session.sh DATA OUTDIR [SECONDS]}
BUDGET=${3:-480}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
JSONL="$OUT/runs.jsonl"
# ARCH, SIZE, BATCH, STEPS, WARMUP override the defaults (e.g. a quick CPU dry run)
COMMON=(--data "$DATA" --arch "${ARCH:-resnet50}" --size "${SIZE:-224}" --batch "${BATCH:-256}"
  --steps "${STEPS:-20}" --warmup "${WARMUP:-8}")

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  nproc
  $PY -c "import torch, lightning, timm, segmentation_models_pytorch as s;\
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn',\
torch.backends.cudnn.version(), 'lightning', lightning.__version__, 'timm',\
timm.__version__, 'smp', s.__version__)"
} >"$OUT/gpu.txt" 2>&1

# run CAP LABEL CMD...: append the command's JSON line, within the remaining budget
run() {
  local cap=$1 label=$2
  shift 2
  local left=$((BUDGET - SECONDS - 5))
  local limit=$((cap < left ? cap : left))
  if ((limit < 20)); then
    echo "SKIPPED (no time left): $label" >>"$OUT/failed.txt"
    return
  fi
  echo "== $label ($limit s): $*" >>"$OUT/stderr.txt"
  local t0=$SECONDS
  if timeout "$limit" "$@" >>"$JSONL" 2>>"$OUT/stderr.txt"; then
    echo "ok $label $((SECONDS - t0)) s" >>"$OUT/progress.txt"
  else
    echo "FAILED ($?) after $((SECONDS - t0)) s: $label" >>"$OUT/failed.txt"
  fi
}

# one step of the session; LABEL is "STACK KIND [LEVER]"
step() {
  local stack=$1 kind=${2:-} lever=${3:-}
  case "$stack $lever" in
    "medssl ") run 150 "medssl $kind" $PY -m medssl bench "$kind" "${COMMON[@]}" --num-workers 4 ;;
    "baseline ") run 120 "baseline $kind" $PY benchmarks/baseline_stack.py "$kind" "${COMMON[@]}" \
      --num-workers 12 ;;
    "medssl synthetic") run 90 "medssl $kind synthetic" $PY -m medssl bench "$kind" "${COMMON[@]}" \
      --synthetic ;;
    "medssl cudnn-benchmark") run 90 "medssl $kind cudnn-benchmark" $PY -m medssl bench "$kind" \
      "${COMMON[@]}" --num-workers 4 --cudnn-benchmark ;;
    "medssl compile") run 200 "medssl $kind compile" $PY -m medssl bench "$kind" "${COMMON[@]}" \
      --num-workers 4 --compile ;;
    "tests ") t0=$SECONDS
      timeout $((BUDGET - SECONDS > 150 ? 150 : BUDGET - SECONDS)) $PY -m pytest -q \
        -p no:cacheprovider tests/data/test_batch_augment.py tests/training/test_device_augment.py \
        >"$OUT/tests.txt" 2>&1
      echo "tests rc=$? in $((SECONDS - t0)) s" >>"$OUT/progress.txt" ;;
    *) echo "unknown step: $stack $kind $lever" >>"$OUT/failed.txt" ;;
  esac
}

# STEPS_LIST (";"-separated "STACK KIND [LEVER]") replaces the default order: the two
# stacks on real slices (the first run prepares the cache), the CUDA tests, the levers
DEFAULT="medssl pretrain;baseline pretrain;medssl finetune;baseline finetune;tests"
DEFAULT+=";medssl pretrain synthetic;medssl finetune synthetic"
DEFAULT+=";medssl pretrain cudnn-benchmark;medssl finetune cudnn-benchmark"
DEFAULT+=";medssl finetune compile;medssl pretrain compile"
IFS=";" read -ra PLAN <<<"${STEPS_LIST:-$DEFAULT}"
for item in "${PLAN[@]}"; do
  # shellcheck disable=SC2086
  step $item
done
echo "done in $SECONDS s" >>"$OUT/progress.txt"
