#!/usr/bin/env bash
# ResNet-20 on full CIFAR-10 on one GPU, in one call: minicnn (cupy backend, training
# steps replayed from a CUDA graph) and its PyTorch twin (benchmarks/torch_resnet.py:
# same recipe, same batches, crops and flips) trained side by side, then the GPU memory
# of a training step at batch 128 (benchmarks/gpu_memory.py). Issue 17's GPU targets.
#
# Prepare, here (the offline CIFAR-10 copy, 19 MB; the folder is git-ignored and carried):
#     mkdir -p .gpu-cifar && cp ../shared/data/prepare_cifar10.py ../shared/data/cifar10-jpeg.tar.xz .gpu-cifar/
# Run, on the GPU machine from the repository root (needs cupy, numpy, pillow, matplotlib, torch):
#     bash benchmarks/gpu_resnet.sh [SRC_DIR [EPOCHS [BUDGET_S]]]     # defaults: .gpu-cifar 40 480
# SRC_DIR holds prepare_cifar10.py + cifar10-jpeg.tar.xz, or a ready cifar-10-batches-py/.
# BUDGET_S bounds the whole script: both trainings are stopped in time for the memory
# table and the packing, so the results come back even when the runs are cut short.
# Recipe (short-schedule variant the issue allows): SGD momentum 0.9, weight decay 5e-4,
# batch 128, crop + flip, cosine schedule from lr 0.1 with 1 warm-up epoch, EPOCHS epochs.
# Results in $OUT (else /tmp/gpu-resnet), 8 files: env.txt, minicnn.log, torch.log,
# minicnn_results.json, torch_resnet.json, gpu_memory.log, gpu_memory.json, minicnn_figures.tgz.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
SRC=${1:-.gpu-cifar}; EPOCHS=${2:-40}; BUDGET=${3:-480}
R=${OUT:-/tmp/gpu-resnet}; mkdir -p "$R"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
left() { echo $((BUDGET - ($(date +%s) - start) - $1)); }

{
  date -u; git log -1 --oneline 2>/dev/null
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import sys, numpy, cupy, minicnn; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'backends', minicnn.available_backends())" 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cudnn tf32', torch.backends.cudnn.allow_tf32)" 2>&1
} >"$R/env.txt"

DATA=$SRC
if [ ! -d "$SRC/cifar-10-batches-py" ]; then
  DATA=/tmp/minicnn-cifar
  python "$SRC/prepare_cifar10.py" "$DATA" >>"$R/env.txt" 2>&1 || { echo "prepare failed" | tee -a "$R/env.txt"; exit 1; }
fi
echo "data ready after $(( $(date +%s) - start )) s" | tee -a "$R/env.txt"

RECIPE=(--schedule cosine --warmup-epochs 1 --epochs "$EPOCHS" --lr 0.1 --momentum 0.9 --weight-decay 5e-4
        --batch-size 128 --seed 0 --data-dir "$DATA")
T=$(left 60)  # keep a minute for the memory table and the packing
MC=/tmp/minicnn-resnet; rm -rf "$MC"
timeout "$T" python -m experiments.resnet --backend cupy "${RECIPE[@]}" --out "$MC" --no-progress \
  --log-every 391 --checkpoint-every 0 >"$R/minicnn.log" 2>&1 &
timeout "$T" python -m benchmarks.torch_resnet --device cuda "${RECIPE[@]}" --threads 4 --out "$R" \
  >"$R/torch.log" 2>&1 &
wait
echo "trainings done after $(( $(date +%s) - start )) s" | tee -a "$R/env.txt"

T=$(left 10)
[ "$T" -gt 20 ] && timeout "$T" python -m benchmarks.gpu_memory --net resnet20 --batch-size 128 --timeout 60 \
  --out "$R" >"$R/gpu_memory.log" 2>&1
cp "$MC/resnet/results.json" "$R/minicnn_results.json" 2>/dev/null
tar czf "$R/minicnn_figures.tgz" -C "$MC" --exclude='*.npz' resnet 2>/dev/null
grep -h -E "Accuracy of|test accuracy" "$R/minicnn.log" "$R/torch.log"
cat "$R/gpu_memory.log" 2>/dev/null
echo "total $(( $(date +%s) - start )) s"
