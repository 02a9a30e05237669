#!/usr/bin/env bash
# After the GPU memory fixes (4a91436): GPU tests, GPU memory of a training step (ResNet-20 b128,
# Net2 b256, deconv b64), and training throughput with the im2col matrices rebuilt (keep=0,
# the new default) vs kept (keep=512 MiB, the old setting), cupy eager and graphed vs PyTorch.
set -uo pipefail
cd "$(dirname "$0")"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
R=${OUT:-/tmp/out}; mkdir -p "$R"
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python -c "import cupy, torch; print('cupy', cupy.__version__, 'torch', torch.__version__)"; } > "$R/env.txt" 2>&1
timeout 120 python -m pytest tests/gpu tests/test_inspect.py -q -rs -s -p no:cacheprovider > "$R/gpu_tests.log" 2>&1
tail -n 3 "$R/gpu_tests.log"
grep -h "eager step peak" "$R/gpu_tests.log"
for cfg in "resnet20 128" "net2 256" "deconv 64"; do
  set -- $cfg
  timeout 70 python -m benchmarks.gpu_memory --net $1 --batch-size $2 --timeout 30 --out /tmp/mem-$1 2>/dev/null | grep "^|"
done | tee "$R/gpu_memory.log"
TP="--backends cupy cupy-graph --device cuda --modes train --repeats 3 --no-plot"
timeout 90 python -m benchmarks.throughput $TP --nets resnet20 net2 --batch-sizes 128 256 --out /tmp/tp0 2>&1 | grep -E '^\|' | tee "$R/throughput_keep0.log"
timeout 90 python -c "
import sys, minicnn.kernels.cuda as k; k.CONV_SCHEDULE.keep = 512 * 2**20
from benchmarks import throughput; throughput.main(sys.argv[1:])" $TP --nets resnet20 net2 --batch-sizes 128 256 --out /tmp/tp1 2>&1 | grep -E '^\|' | tee "$R/throughput_keep512.log"
echo done
