#!/usr/bin/env bash
# Before (e714451's kernels/cuda/optim.py) and after (this commit's) alternating, five rounds, same window; the
# editable install maps minicnn.kernels to this checkout, so the file is swapped in place and put back.
#   bash benchmarks/cpu_results/amd-avx2-2026-12-08/sgd_multi_host/ab.sh
set -u
D=$(dirname "$0")
F=kernels/cuda/optim.py
cp "$F" /tmp/optim.after.py
git show e714451:"$F" > /tmp/optim.before.py
trap 'cp /tmp/optim.after.py "$F"' EXIT
uptime
for round in 1 2 3 4 5; do
  for v in before after; do
    cp /tmp/optim.$v.py "$F"
    echo "== round $round: $v"; PYTHONPATH=. python "$D/probe.py"; PYTHONPATH=. python "$D/probe.py" --cheap-address | sed 's/$/  [cheap address]/'
  done
done
uptime
