#!/usr/bin/env bash
# issue 19, the batch-4 split rule (kernels/cpu/split_chooser.py) on this session's Intel Xeon VM
# (2 vCPUs, AVX-512, OpenBLAS 0.3.31): the throughput rows at batch 4 with the rule ("auto") and
# with the old way for every call ("threads"), alternating processes, two rounds each; then the
# ways A/B in one process. Nothing else running.
cd "$(dirname "$0")/../../.."; . .venv/bin/activate
O=benchmarks/cpu_results/net2-b4-intel-2026-12-06; P=$O/probes
{ date -u; uptime; lscpu | grep -E 'Model name|^CPU\(s\)|L2|L3'; git rev-parse --short HEAD; } > $O/env.txt
for r in 1 2; do
  for s in threads auto; do
    MINICNN_CPU_SPLIT=$s python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 resnet20 \
      --batch-sizes 4 --out $O/throughput-$s-$r --no-plot > $O/throughput-$s-$r.log 2>&1
  done
done
WAYS="threads rule blas2" BATCHES="4" PYTHONPATH=. python $P/ways_ab.py 10 net2 resnet20 tutorial deconv > $O/ways_ab_final.txt 2>&1
{ date -u; uptime; } >> $O/env.txt
