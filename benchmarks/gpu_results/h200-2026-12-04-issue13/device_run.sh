#!/usr/bin/env bash
# Issue 13 device check: GPU tests on HEAD, a short task2 on cupy, and cupy throughput
# of HEAD vs the session's base (9dae473) in one window, each beside PyTorch CUDA.
set -uo pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
R=${OUT:-/tmp/out}; mkdir -p "$R"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv;
  python -c "import sys, numpy, cupy, torch; print(sys.version.split()[0], numpy.__version__, cupy.__version__, torch.__version__)"; } 2>&1 | tee "$R/env.txt"
echo "== GPU tests (HEAD)"
PYTHONPATH=$PWD timeout 170 python -m pytest tests/gpu tests/test_data_loader.py -q -rs -p no:cacheprovider 2>&1 | tee "$R/gpu_tests.log"
echo "== task2 on cupy (HEAD)"
PYTHONPATH=$PWD timeout 80 python -m experiments.task2 --backend cupy --data-dir .gpu-data --epochs 1 --batch-size 64 \
  --lr 0.01 --log-every 20 --no-progress --out /tmp/t2 2>&1 | tee "$R/task2.log"
for tree in head base; do
  dir=$PWD; [ $tree = base ] && dir=$PWD/../.gpu-base
  echo "== throughput $tree"
  (cd "$dir" && PYTHONPATH=$dir timeout 75 python -m benchmarks.throughput --backends cupy cupy-graph --device cuda \
     --nets tutorial net2 --batch-sizes 64 256 --repeats 3 --no-plot --out /tmp/tp_$tree) 2>&1 | tee "$R/throughput_$tree.log"
  cp /tmp/tp_$tree/throughput.json "$R/throughput_$tree.json" 2>/dev/null
done
echo done
