#!/usr/bin/env bash
# Last device check of the session: GPU tests (with ResNet-20 and the AvgPools on cupy),
# minicnn.inspect on cupy vs numpy/numba, then ResNet-20 training throughput on cupy vs PyTorch.
set -uo pipefail
cd "$(dirname "$0")"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
R=${OUT:-/tmp/out}; mkdir -p "$R"
timeout 120 python -m pytest tests/gpu tests/test_inspect.py -q -rs -p no:cacheprovider 2>&1 | tee "$R/gpu_tests.log"
timeout 60 python -m benchmarks.throughput --backends cupy --device cuda --nets resnet20 --modes train infer \
  --batch-sizes 128 --repeats 2 --no-plot --out /tmp/tp 2>&1 | grep -E '^\[|^\|' | tee "$R/resnet20_throughput.log"
echo done
