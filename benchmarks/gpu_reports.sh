#!/usr/bin/env bash
# The course reports' experiments (issue 15) on the cupy backend, in one device call: each run
# as the README's table lists it (seed 0), one after the other within a time budget, for the
# table's GPU wall times. Runs that the budget leaves out are named at the end; give them to a
# later call (STEPS=...).
#
# Prepare, here (git-ignored folders, carried; about 50 MB together):
#     mkdir -p .gpu-cifar && cp ../shared/data/prepare_cifar10.py ../shared/data/cifar10-jpeg.tar.xz .gpu-cifar/
#     mkdir -p .gpu-reports-data && cp -r ../shared/data/mnist-5k ../shared/data/fashion-mnist .gpu-reports-data/
# Run, on the GPU machine from the repository root (cupy, numpy, pillow, matplotlib):
#     bash benchmarks/gpu_reports.sh [BUDGET_S]                # default 540
#     STEPS="threeblock-net2 dropout-p0.5" bash benchmarks/gpu_reports.sh 540
# Results in $OUT (else /tmp/gpu-reports), 4 files: env.txt, run.log (each command and its wall
# seconds), summary.md (benchmarks/report_table.py per run), results.tgz (every results.json,
# comparison.md and log, and one run's figures).
# MC_BACKEND=numba SUBSET=0.01 EPOCHS=1 try the script's logic on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
BUDGET=${1:-540}
R=${OUT:-/tmp/gpu-reports}; mkdir -p "$R"
W=/tmp/gpu-reports-work; rm -rf "$W"; mkdir -p "$W"
BACKEND=${MC_BACKEND:-cupy}
CIFAR_SRC=${CIFAR_SRC:-.gpu-cifar}; DATA=${DATA:-.gpu-reports-data}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
EXTRA=(${SUBSET:+--subset "$SUBSET"} ${EPOCHS:+--epochs "$EPOCHS"})

{
  date -u; git log -1 --oneline 2>/dev/null
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import sys, numpy, minicnn; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'backends', minicnn.available_backends())" 2>&1
} >"$R/env.txt"
CIFAR=$CIFAR_SRC
if [ ! -d "$CIFAR_SRC/cifar-10-batches-py" ]; then
  CIFAR=/tmp/minicnn-cifar
  python "$CIFAR_SRC/prepare_cifar10.py" "$CIFAR" >>"$R/env.txt" 2>&1 || { echo "prepare failed" | tee -a "$R/env.txt"; exit 1; }
fi
echo "data ready after $(( $(date +%s) - start )) s" | tee -a "$R/env.txt"

# name | experiment and its flags (the README table's rows, seed 0)
ALL=(
  "mnist5k-5ep|mnist --data-dir $DATA/mnist-5k"
  "fashion-5ep|mnist --dataset fashion-mnist --data-dir $DATA/fashion-mnist"
  "cifar-small-35ep|cifar_small --data-dir $CIFAR"
  "threeblock-base|threeblock --variants base --data-dir $CIFAR"
  "threeblock-net1|threeblock --variants net1 --data-dir $CIFAR"
  "dropout-p0|dropout_study --rates 0 --data-dir $CIFAR"
  "dropout-p0.2|dropout_study --rates 0.2 --data-dir $CIFAR"
  "dropout-p0.5|dropout_study --rates 0.5 --data-dir $CIFAR"
  "dropout-p0.8|dropout_study --rates 0.8 --data-dir $CIFAR"
  "dropout-tuned|dropout_study --rates --tuned --data-dir $CIFAR"
  "threeblock-net2|threeblock --variants net2 --data-dir $CIFAR"
  "threeblock-tuned|threeblock --variants tuned --data-dir $CIFAR"
)
left=()
for entry in "${ALL[@]}"; do
  name=${entry%%|*}; read -r -a cmd <<<"${entry#*|}"
  if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $name "* ]]; then continue; fi
  T=$((BUDGET - ($(date +%s) - start) - 20))  # keep 20 s for the packing
  if [ "$T" -lt 30 ]; then left+=("$name"); continue; fi
  line=(python -m "experiments.${cmd[0]}" --backend "$BACKEND" --seed 0 --no-progress
        --out "$W/$name/minicnn-seed0" "${cmd[@]:1}" "${EXTRA[@]}")
  echo "\$ ${line[*]}" >>"$R/run.log"
  t0=$(date +%s.%N)
  timeout "$T" "${line[@]}" >"$W/$name.log" 2>&1
  rc=$?
  echo "$name: rc $rc, $(echo "$(date +%s.%N) - $t0" | bc) s wall" | tee -a "$R/run.log"
  if [ "$rc" -eq 0 ]; then
    { echo "## $name"; python -m benchmarks.report_table "$W/$name"; echo; } >>"$R/summary.md" 2>&1
  else
    tail -3 "$W/$name.log" >>"$R/run.log"
    left+=("$name")
  fi
done
[ "${#left[@]}" -gt 0 ] && echo "not done (give them to a later call): STEPS=\"${left[*]}\"" | tee -a "$R/run.log"
first=$(ls -d "$W"/*/minicnn-seed0 2>/dev/null | head -1)
(cd "$W" && find . \( -name results.json -o -name comparison.md -o -name '*.log' \) -print0 \
  | tar czf "$R/results.tgz" --exclude='*.npz' --null -T - ${first:+"${first#"$W"/}"})
cat "$R/summary.md" 2>/dev/null
echo "total $(( $(date +%s) - start )) s"
