#!/usr/bin/env bash
# The split rule after review (commit 5cd61c3: single-range calls at one BLAS thread), on a quiet
# machine: rule vs threads in one process (Net2 and ResNet-20 at b4, the nets with split calls
# there), then the throughput rows at b4 with MINICNN_CPU_SPLIT=threads / auto in alternating
# processes, two rounds.
cd "$(dirname "$0")/../../.."; . .venv/bin/activate
O=benchmarks/cpu_results/net2-b4-intel-2026-12-06; P=$O/probes
{ date -u; uptime; git rev-parse --short HEAD; } > $O/env_final.txt
WAYS="threads rule" BATCHES="4" PYTHONPATH=. python $P/ways_ab.py 12 net2 resnet20 > $O/ways_ab_after_review.txt 2>&1
for r in 1 2; do
  for s in threads auto; do
    MINICNN_CPU_SPLIT=$s python -m benchmarks.throughput --backends numba --nets net2 resnet20 \
      --batch-sizes 4 --out $O/final-throughput-$s-$r --no-plot > $O/final-throughput-$s-$r.log 2>&1
  done
done
{ date -u; uptime; } >> $O/env_final.txt
