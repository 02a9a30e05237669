#!/usr/bin/env bash
# issue 19: OpenBLAS's kernels, pinned (this VM's OPENBLAS_CORETYPE=Haswell) vs autodetected (SkylakeX), same quiet window
cd "$(dirname "$0")/../../.."; . .venv/bin/activate
O=benchmarks/cpu_results/openblas-kernels-amd-2026-12-06; mkdir -p $O
{ date -u; uptime; lscpu | grep -E 'Model name|^CPU\(s\)|L2|L3'; git rev-parse --short HEAD; env | grep OPENBLAS; } > $O/env.txt
for round in 1 2; do
  OPENBLAS_CORETYPE=Haswell python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 --out $O/pinned-$round --no-plot > $O/pinned-$round.log 2>&1
  env -u OPENBLAS_CORETYPE python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 --out $O/auto-$round --no-plot > $O/auto-$round.log 2>&1
done
env -u OPENBLAS_CORETYPE python -m benchmarks.gemm_ceiling --net net2 --batch-size 64 > $O/gemm_ceiling_net2_b64_auto.txt 2>&1
OPENBLAS_CORETYPE=Haswell python -m benchmarks.gemm_ceiling --net net2 --batch-size 64 > $O/gemm_ceiling_net2_b64_pinned.txt 2>&1
{ date -u; uptime; } >> $O/env.txt
