#!/usr/bin/env bash
# Before (c46815d) and after (93e17d5, conv_igemm._launch_plan) alternating, three rounds, same window. The
# editable install maps minicnn.kernels to this checkout's kernels/, so the before round swaps the file in place
# (and puts it back): bash benchmarks/cpu_results/amd-avx2-2026-12-08/igemm_host_overhead/ab.sh
set -u
D=$(dirname "$0")
F=kernels/cuda/conv_igemm.py
cp "$F" /tmp/conv_igemm.after.py
git show c46815d:"$F" > /tmp/conv_igemm.before.py
trap 'cp /tmp/conv_igemm.after.py "$F"' EXIT
uptime
for round in 1 2 3; do
  cp /tmp/conv_igemm.before.py "$F"; echo "== round $round: before (c46815d)"; PYTHONPATH=. python "$D/probe.py"
  cp /tmp/conv_igemm.after.py "$F"; echo "== round $round: after (93e17d5)"; PYTHONPATH=. python "$D/probe.py"
done
uptime
