#!/usr/bin/env bash
# The direct kernels for the first layers (commit 4208b8f; kernels/cpu/direct.py), on this
# session's Intel Xeon VM (2 vCPUs, AVX-512, OpenBLAS SkylakeX), one quiet window: direct on/off
# in one process (fusion_ab, alternating blocks), then the throughput table against PyTorch with
# the new default (direct_max 512) and with it off (MINICNN_CPU_DIRECT_MAX=0), alternating
# processes, two rounds each.
# Usage: bash run.sh [OUT]  (OUT: where the outputs go, default this folder)
cd "$(dirname "$0")/../../.."; . .venv/bin/activate
O=${1:-benchmarks/cpu_results/direct-intel-2026-12-06}; mkdir -p $O
{ date -u; uptime; lscpu | grep -E 'Model name|^CPU\(s\)|L2|L3' ; git rev-parse --short HEAD; env | grep OPENBLAS; } > $O/env.txt
python -m benchmarks.fusion_ab --switch direct --direct-max 512 --nets tutorial deconv --batch-sizes 4 64 256 \
  --rounds 9 > $O/fusion_ab_direct.txt 2>&1
python -m benchmarks.fusion_ab --switch direct --direct-max 512 --nets resnet20 mnist --batch-sizes 4 64 \
  --rounds 9 >> $O/fusion_ab_direct.txt 2>&1
for r in 1 2; do
  for d in 512 0; do
    MINICNN_CPU_DIRECT_MAX=$d python -m benchmarks.throughput --backends numba --nets tutorial deconv \
      --out $O/throughput-direct$d-$r --no-plot > $O/throughput-direct$d-$r.log 2>&1
  done
done
{ date -u; uptime; } >> $O/env.txt
