#!/usr/bin/env bash
# One prepared GPU check: GPU tests, a short task2 run on the cupy backend, the
# cupy-vs-PyTorch-CUDA throughput table (cupy-graph beside PyTorch's whole-step CUDA
# graph), in-process A/Bs of minicnn's GPU settings (fusion, TF32 convolutions, the wide
# conv layout MINICNN_CONV_WIDE, direct convolution MINICNN_CONV_DIRECT_MAX; ab.log), a
# per-layer profile of the cupy training step at batch 256, the host time of matmul, and
# the GPU memory of a training step. Usually about 6 minutes before the A/Bs and the
# matmul pass were added (not yet run with them: their time is not measured); at most ~14.8
# (timeouts 150+90+180+4x60+40+40+30+2x60 s; a device call ends at 600 s, so in the
# worst case the last parts are cut).
#
# Prepare (on a machine with the full CIFAR-10; writes ~26 MB, git-ignored):
#     python -m benchmarks.make_gpu_data            # -> .gpu-data/cifar-10-batches-py
#     pip download --no-deps -d .whl tqdm threadpoolctl   # pure-Python deps the GPU image may lack
# Run (on the GPU machine, from the repository root; needs cupy, numba, numpy,
# matplotlib, pillow, pytest and torch; tqdm and threadpoolctl are installed
# from .whl/ into /tmp when missing; no network):
#     bash benchmarks/gpu_check.sh [DATA_DIR]       # default DATA_DIR: .gpu-data
# Results go to $OUT when set, else benchmarks/results/gpu_check/ (10 files: env.txt, gpu_tests.log,
# task2.log, task2_results.json, throughput.log, throughput.json, ab.log, profile.log,
# matmul_overhead.log, gpu_memory.log).
# Without a GPU usable from Python (no CuPy, no driver, no device) it stops at once with one line, exit 1.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! why=$(python -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0, 'no CUDA device'" 2>&1); then
  echo "gpu_check: no usable CUDA GPU here ($(printf '%s\n' "$why" | tail -n 1)); run it on a machine with an NVIDIA GPU and CuPy" >&2
  exit 1
fi
DATA=${1:-.gpu-data}
RES=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$RES"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
status=0
for dep in tqdm threadpoolctl; do
  if ! python -c "import $dep" 2>/dev/null && ls .whl/"$dep"-*.whl >/dev/null 2>&1; then
    python -m pip install -q --no-index --no-deps --target /tmp/minicnn-site .whl/"$dep"-*.whl &&
      case ":$PYTHONPATH:" in *:/tmp/minicnn-site:*) ;; *) export PYTHONPATH="$PYTHONPATH:/tmp/minicnn-site" ;; esac
  fi
done

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import sys, numpy, cupy, minicnn; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount(), 'backends', minicnn.available_backends())" 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
} | tee "$RES/env.txt"

echo "== GPU tests"
timeout 150 python -m pytest tests/gpu tests/test_data_loader.py -q -rs -p no:cacheprovider 2>&1 | tee "$RES/gpu_tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== task2 on the cupy backend (subset in $DATA)"
T2=$(mktemp -d)
timeout 90 python -m experiments.task2 --backend cupy --data-dir "$DATA" --epochs 1 --batch-size 64 --lr 0.01 \
  --log-every 20 --no-progress --out "$T2" 2>&1 | tee "$RES/task2.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
cp "$T2"/task2/results.json "$RES/task2_results.json" 2>/dev/null

echo "== throughput: cupy (eager, and training replayed from a CUDA graph) vs PyTorch CUDA (eager, and its whole step as a CUDA graph)"
TP=$(mktemp -d)
timeout 180 python -m benchmarks.throughput --backends cupy cupy-graph --device cuda --nets tutorial deconv net2 mnist resnet20 \
  --batch-sizes 64 256 --repeats 3 --out "$TP" 2>&1 | tee "$RES/throughput.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
cp "$TP"/throughput.json "$RES/throughput.json" 2>/dev/null

echo "== A/B of minicnn's GPU settings: CUDA-graph training steps, one process per switch, on/off blocks alternating"
echo "   (fusion; TF32 convolutions, the default; the wide conv layout; direct convolution for layers <= 4096 weights)"
for sw in fusion tf32-conv wide direct; do
  timeout 60 python -m benchmarks.fusion_ab --backend cupy-graph --switch "$sw" --nets tutorial deconv net2 \
    --batch-sizes 64 256 --rounds 5 --min-time 0.1 --no-kernels 2>&1
done | tee "$RES/ab.log"
MINICNN_CONV_WIDE=1 timeout 40 python -m benchmarks.gpu_memory --net net2 --batch-size 256 --timeout 25 --out "$(mktemp -d)" 2>&1 \
  | grep -E "^\||rror" | sed 's/^/wide: /' | tee -a "$RES/ab.log"
echo "== per-layer profile of the cupy training step, batch 256 (where the time goes)"
for net in tutorial; do
  timeout 40 python -m benchmarks.layer_profile --backend cupy --net "$net" --batch-size 256 \
    --steps 20 --min-time 0.5 --out "$TP" 2>&1
done | tee "$RES/profile.log"

echo "== per-call host time of minicnn's matmul (cuBLAS through ctypes, plans cached per layout) vs cupy.matmul"
timeout 30 python -m benchmarks.matmul_overhead --calls 1000 --rounds 3 2>&1 | tee "$RES/matmul_overhead.log"

echo "== GPU memory of a training step: cupy (eager, graphed) vs PyTorch CUDA"
for cfg in "resnet20 128" "net2 256"; do
  set -- $cfg
  timeout 60 python -m benchmarks.gpu_memory --net "$1" --batch-size "$2" --timeout 25 --out "$TP" 2>&1 | grep -E "^\||rror"
done | tee "$RES/gpu_memory.log"

echo "gpu_check: exit status $status; results in $RES"
exit $status
