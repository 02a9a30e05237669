#!/usr/bin/env bash
# BatchNorm in a CUDA graph: the graph tests (ResNet-8 replay == eager), then ResNet-20 training
# throughput eager vs graphed vs PyTorch at batch 128.
set -uo pipefail
cd "$(dirname "$0")"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
R=${OUT:-/tmp/out}; mkdir -p "$R"
timeout 90 python -m pytest tests/gpu/test_cuda_graph.py tests/gpu/test_resnet_gpu.py -q -rs -p no:cacheprovider 2>&1 | tee "$R/graph_tests.log"
timeout 60 python -m benchmarks.throughput --backends cupy cupy-graph --device cuda --nets resnet20 --modes train \
  --batch-sizes 128 --repeats 2 --no-plot --out /tmp/tp 2>&1 | grep -E '^\[|^\||rror' | tee "$R/resnet20_graph.log"
echo done
