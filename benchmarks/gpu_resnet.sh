#!/usr/bin/env bash
# ResNet-20 on full CIFAR-10 on one GPU: minicnn (cupy backend, training steps replayed from a
# CUDA graph) and its PyTorch twin (benchmarks/torch_resnet.py: same recipe, same batches, crops
# and flips) trained side by side, then the GPU memory of a training step at batch 128
# (benchmarks/gpu_memory.py). Issue 17's GPU targets.
#
# Prepare, here (the offline CIFAR-10 copy, 19 MB; the folder is git-ignored and carried):
#     mkdir -p .gpu-cifar && cp ../shared/data/prepare_cifar10.py ../shared/data/cifar10-jpeg.tar.xz .gpu-cifar/
# Run, on the GPU machine from the repository root (needs cupy, numpy, pillow, matplotlib, torch):
#     bash benchmarks/gpu_resnet.sh [SRC_DIR [EPOCHS [BUDGET_S]]]     # defaults: .gpu-cifar 40 480
# SRC_DIR holds prepare_cifar10.py + cifar10-jpeg.tar.xz, or a ready cifar-10-batches-py/.
# BUDGET_S bounds the whole script: both trainings are stopped in time for the packing (and the
# memory table, when there is time for it), so the results come back even when runs are cut short.
#
# A run longer than one device session (He et al.'s 164 epochs: about 22 min side by side) is
# done in parts. Each part returns $OUT/state.tgz (minicnn's last.npz, best.npz and history, the
# twin's torch_resnet_last.pt and torch_resnet.json: a few MB). A session's checkout and /tmp
# do not outlive it, so commit each part's state.tgz (with its logs) under
# benchmarks/gpu_results/<run>/part<K>/ before the session ends. Before the next part, here:
#     rm -rf .gpu-resnet-state && mkdir .gpu-resnet-state && cp <that part folder>/state.tgz .gpu-resnet-state/
# and carry .gpu-resnet-state (git-ignored) with the same SRC_DIR and EPOCHS: when
# $STATE/state.tgz exists (STATE defaults to .gpu-resnet-state), both sides resume from it
# (minicnn with --resume from the exact batch, the twin from its last finished epoch).
# minicnn is stopped with SIGINT (it saves its position and exits); the twin ends before an
# epoch it has no time left for (--time-budget).
#
# Recipe (short-schedule variant the issue allows): SGD momentum 0.9, weight decay 5e-4,
# batch 128, crop + flip, cosine schedule from lr 0.1 with 1 warm-up epoch, EPOCHS epochs.
# Results in $OUT (else /tmp/gpu-resnet), 8 files at most: env.txt (with the memory table),
# minicnn.log, torch.log, minicnn_results.json (once minicnn has trained every epoch),
# torch_resnet.json, gpu_memory.json, minicnn_figures.tgz, state.tgz.
#
# MC_BACKEND=numba TWIN_DEVICE=cpu SUBSET=0.01 try the script's logic on a CPU (tiny subset).
set -uo pipefail
set -m  # background jobs keep SIGINT (a non-interactive shell would make them ignore it)
cd "$(dirname "$0")/.."
start=$(date +%s)
SRC=${1:-.gpu-cifar}; EPOCHS=${2:-40}; BUDGET=${3:-480}
R=${OUT:-/tmp/gpu-resnet}; mkdir -p "$R"
STATE=${STATE:-.gpu-resnet-state}
MC_BACKEND=${MC_BACKEND:-cupy}; TWIN_DEVICE=${TWIN_DEVICE:-cuda}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
left() { echo $((BUDGET - ($(date +%s) - start) - $1)); }

{
  date -u; git log -1 --oneline 2>/dev/null
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import sys, numpy, minicnn; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'backends', minicnn.available_backends())" 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cudnn tf32', torch.backends.cudnn.allow_tf32)" 2>&1
} >"$R/env.txt"

DATA=$SRC
if [ ! -d "$SRC/cifar-10-batches-py" ]; then
  DATA=/tmp/minicnn-cifar
  python "$SRC/prepare_cifar10.py" "$DATA" >>"$R/env.txt" 2>&1 || { echo "prepare failed" | tee -a "$R/env.txt"; exit 1; }
fi
echo "data ready after $(( $(date +%s) - start )) s" | tee -a "$R/env.txt"

RECIPE=(--schedule cosine --warmup-epochs 1 --epochs "$EPOCHS" --lr 0.1 --momentum 0.9 --weight-decay 5e-4
        --batch-size 128 --seed 0 --data-dir "$DATA" ${SUBSET:+--subset "$SUBSET"})
MC=/tmp/minicnn-resnet; TW=/tmp/torch-resnet; rm -rf "$MC" "$TW"; mkdir -p "$MC" "$TW"
MC_RESUME=(); TW_RESUME=()
if [ -f "$STATE/state.tgz" ]; then
  tar xzf "$STATE/state.tgz" -C /tmp && echo "resuming from $STATE/state.tgz" | tee -a "$R/env.txt"
  [ -f "$MC/resnet/last.npz" ] && MC_RESUME=(--resume)
  [ -f "$TW/torch_resnet_last.pt" ] && TW_RESUME=(--resume)
fi

T=$(left 45)  # keep time for the packing (and the memory table, when there is time)
timeout -s INT -k 30 "$T" python -m experiments.resnet --backend "$MC_BACKEND" "${RECIPE[@]}" --out "$MC" \
  --no-progress --log-every 391 --checkpoint-every 0 "${MC_RESUME[@]}" >>"$R/minicnn.log" 2>&1 &
timeout -k 30 "$T" python -m benchmarks.torch_resnet --device "$TWIN_DEVICE" "${RECIPE[@]}" --threads 4 \
  --out "$TW" --time-budget "$((T - 5))" "${TW_RESUME[@]}" >>"$R/torch.log" 2>&1 &
wait
echo "trainings done after $(( $(date +%s) - start )) s" | tee -a "$R/env.txt"

tar czf "$R/state.tgz" -C /tmp --exclude='*.png' --exclude='*.lock' minicnn-resnet torch-resnet 2>>"$R/env.txt"
cp "$TW/torch_resnet.json" "$R/" 2>/dev/null
if [ -f "$MC/resnet/results.json" ]; then
  cp "$MC/resnet/results.json" "$R/minicnn_results.json"
  tar czf "$R/minicnn_figures.tgz" -C "$MC" --exclude='*.npz' resnet 2>/dev/null
fi
T=$(left 10)
if [ "$TWIN_DEVICE" = cuda ] && [ "$T" -gt 70 ]; then
  timeout "$T" python -m benchmarks.gpu_memory --net resnet20 --batch-size 128 --timeout 60 \
    --out "$R" >>"$R/env.txt" 2>&1
fi
grep -h -E "Accuracy of|test accuracy|interrupted|part ends|resumed" "$R/minicnn.log" "$R/torch.log"
echo "total $(( $(date +%s) - start )) s"
