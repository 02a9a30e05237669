#!/usr/bin/env bash
# One prepared GPU check, in order of what it decides: the GPU tests; in-process A/Bs of
# minicnn's TF32 convolutions and implicit-GEMM convolutions (MINICNN_CONV_IMPLICIT; ab.log),
# the latter's GPU memory and per-layer times beside im2col and cuDNN (profile.log); the
# cupy-vs-PyTorch-CUDA throughput table (cupy-graph beside PyTorch's whole-step CUDA graph);
# A/Bs of the wide conv layout (MINICNN_CONV_WIDE), direct convolution
# (MINICNN_CONV_DIRECT_MAX) and fusion; a short task2 run on the cupy backend; a per-layer
# profile of the cupy training step at batch 256, the host time of matmul and the GPU memory
# of a training step (profile.log).
#
# It fits one device call: the whole script keeps to GPU_CHECK_BUDGET seconds (default 540;
# a call ends at 600 s, and a lent machine has 15 minutes in all, its start included). Each
# step runs under min(its own timeout, what is left of the budget); a step that would get
# under 20 s is skipped with a line saying so in its file. It writes at most 8 files, the
# most a device call brings back: gpu_tests.log (with the machine's versions), ab.log,
# throughput.log, throughput.json, task2.log, task2_results.json, profile.log.
# `bash benchmarks/gpu_check.sh --plan` prints the steps and their timeouts and exits.
#
# Prepare (on a machine with the full CIFAR-10; writes ~26 MB, git-ignored):
#     python -m benchmarks.make_gpu_data            # -> .gpu-data/cifar-10-batches-py
#     pip download --no-deps -d .whl tqdm threadpoolctl   # pure-Python deps the GPU image may lack
# Run (on the GPU machine, from the repository root; needs cupy, numba, numpy,
# matplotlib, pillow, pytest and torch; tqdm and threadpoolctl are installed
# from .whl/ into /tmp when missing; no network):
#     bash benchmarks/gpu_check.sh [DATA_DIR]       # default DATA_DIR: .gpu-data
# Results go to $OUT when set, else benchmarks/results/gpu_check/.
# Without a GPU usable from Python (no CuPy, no driver, no device) it stops at once with one line, exit 1.
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET=${GPU_CHECK_BUDGET:-540}
PLAN=0; if [ "${1:-}" = --plan ]; then PLAN=1; shift; fi
status=0

step() {  # step TITLE FILE TIMEOUT CMD ...: CMD under min(TIMEOUT, the budget left - 5 s), output appended to FILE
  local title=$1 file=$2 cap=$3; shift 3
  if [ "$PLAN" = 1 ]; then printf '%4s s  %-16s %s\n' "$cap" "$file" "$title"; return 0; fi
  local left=$(( BUDGET - SECONDS - 5 ))
  echo "== $title" | tee -a "$RES/$file"
  if [ "$left" -lt 20 ]; then
    echo "skipped: $(( BUDGET - SECONDS )) s of the $BUDGET s budget left" | tee -a "$RES/$file"
    status=1; return 0
  fi
  local t=$(( cap < left ? cap : left ))
  timeout -k 5 "$t" "$@" 2>&1 | tee -a "$RES/$file"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    status=1
    if [ "$rc" -eq 124 ]; then echo "timed out after $t s" | tee -a "$RES/$file"; fi
  fi
  return 0
}

if [ "$PLAN" = 1 ]; then
  echo "gpu_check plan: budget $BUDGET s (GPU_CHECK_BUDGET); each step's timeout, its file, what it runs:"
  RES=/nonexistent; DATA=${1:-.gpu-data}; T2=/nonexistent; TP=/nonexistent
elif ! why=$(python -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0, 'no CUDA device'" 2>&1); then
  echo "gpu_check: no usable CUDA GPU here ($(printf '%s\n' "$why" | tail -n 1)); run it on a machine with an NVIDIA GPU and CuPy" >&2
  exit 1
else
  DATA=${1:-.gpu-data}
  RES=${OUT:-benchmarks/results/gpu_check}
  mkdir -p "$RES"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
  for dep in tqdm threadpoolctl; do
    if ! python -c "import $dep" 2>/dev/null && ls .whl/"$dep"-*.whl >/dev/null 2>&1; then
      python -m pip install -q --no-index --no-deps --target /tmp/minicnn-site .whl/"$dep"-*.whl &&
        case ":$PYTHONPATH:" in *:/tmp/minicnn-site:*) ;; *) export PYTHONPATH="$PYTHONPATH:/tmp/minicnn-site" ;; esac
    fi
  done
  {
    date -u
    echo "gpu_check: budget $BUDGET s"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    python -c "import sys, numpy, cupy, minicnn; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount(), 'backends', minicnn.available_backends())" 2>&1
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
  } | tee "$RES/gpu_tests.log"
  T2=$(mktemp -d); TP=$(mktemp -d)
fi

step "GPU tests" gpu_tests.log 150 \
  python -m pytest tests/gpu tests/test_data_loader.py -q -rs -p no:cacheprovider

# minicnn's GPU settings: CUDA-graph training steps, one process per switch, on/off blocks alternating.
# First what this run decides (TF32 convolutions, the default; the implicit-GEMM convolutions, with their
# memory and per-layer times), then the issue's table (throughput), then the older candidates (the wide
# conv layout; direct convolution for layers <= 4096 weights, which the implicit kernels would supersede;
# fusion) and the rest, as far as the budget goes.
ab() {
  step "A/B --switch $1" ab.log 60 \
    python -m benchmarks.fusion_ab --backend cupy-graph --switch "$1" --nets tutorial deconv net2 \
      --batch-sizes 64 256 --rounds 5 --min-time 0.1 --no-kernels
}
ab tf32-conv
ab implicit
MINICNN_CONV_IMPLICIT=1 step "GPU memory with the implicit-GEMM convolutions (no column matrix), net2 b256" ab.log 40 \
  python -m benchmarks.gpu_memory --net net2 --batch-size 256 --timeout 25 --out "$TP"
step "per-layer convolution times: im2col + cuBLAS vs implicit GEMM vs cuDNN, TF32 on (where implicit wins)" \
  profile.log 45 python -m benchmarks.conv_layers_gpu --nets tutorial net2 resnet20 --batch-sizes 64 256 --rounds 3 \
    --iters 10 --out "$TP"

step "throughput: cupy (eager, and training replayed from a CUDA graph) vs PyTorch CUDA (eager, and its whole step as a CUDA graph)" \
  throughput.log 180 \
  python -m benchmarks.throughput --backends cupy cupy-graph --device cuda --nets tutorial deconv net2 mnist resnet20 \
    --batch-sizes 64 256 --repeats 3 --out "$TP"
[ "$PLAN" = 1 ] || cp "$TP"/throughput.json "$RES/throughput.json" 2>/dev/null

ab wide
ab direct
ab fusion
MINICNN_CONV_WIDE=1 step "GPU memory with the wide layout, net2 b256" ab.log 40 \
  python -m benchmarks.gpu_memory --net net2 --batch-size 256 --timeout 25 --out "$TP"

step "task2 on the cupy backend (subset in $DATA)" task2.log 90 \
  python -m experiments.task2 --backend cupy --data-dir "$DATA" --epochs 1 --batch-size 64 --lr 0.01 \
    --log-every 20 --no-progress --out "$T2"
[ "$PLAN" = 1 ] || cp "$T2"/task2/results.json "$RES/task2_results.json" 2>/dev/null

step "per-layer profile of the cupy training step, tutorial net, batch 256 (where the time goes)" profile.log 40 \
  python -m benchmarks.layer_profile --backend cupy --net tutorial --batch-size 256 --steps 20 --min-time 0.5 --out "$TP"
step "per-call host time of minicnn's matmul (cuBLAS through ctypes, plans cached per layout) vs cupy.matmul" \
  profile.log 30 python -m benchmarks.matmul_overhead --calls 1000 --rounds 3
for cfg in "resnet20 128" "net2 256"; do
  set -- $cfg
  step "GPU memory of a training step, $1 b$2: cupy (eager, graphed) vs PyTorch CUDA" profile.log 60 \
    python -m benchmarks.gpu_memory --net "$1" --batch-size "$2" --timeout 25 --out "$TP"
done

[ "$PLAN" = 1 ] && exit 0
echo "gpu_check: exit status $status after $SECONDS s (budget $BUDGET s); results in $RES" | tee -a "$RES/gpu_tests.log"
exit $status
