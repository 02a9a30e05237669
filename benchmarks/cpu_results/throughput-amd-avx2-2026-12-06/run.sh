#!/usr/bin/env bash
# issue 19's table (and ResNet-20, issue 17) on this session's VM: AMD EPYC, 2 cores, AVX2 only
# (no AVX-512), 1 MiB L2 per core; OpenBLAS autodetected (no OPENBLAS_CORETYPE in this shell).
# Two rounds, each a fresh process per run, nothing else running.
cd "$(dirname "$0")/../../.."; . .venv/bin/activate
O=benchmarks/cpu_results/throughput-amd-avx2-2026-12-06; mkdir -p $O
{ date -u; uptime; lscpu | grep -E 'Model name|^CPU\(s\)|L2|L3|Flags' | cut -c1-400; git rev-parse --short HEAD; env | grep OPENBLAS; } > $O/env.txt
for round in 1 2; do
  python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 --out $O/round-$round --no-plot > $O/round-$round.log 2>&1
  python -m benchmarks.throughput --backends numba --nets resnet20 --batch-sizes 4 64 128 --modes train --min-time 1 --out $O/resnet20-round-$round --no-plot > $O/resnet20-round-$round.log 2>&1
done
{ date -u; uptime; } >> $O/env.txt
