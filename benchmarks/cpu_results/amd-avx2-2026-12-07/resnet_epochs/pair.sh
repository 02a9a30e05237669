#!/usr/bin/env bash
# ResNet-20's CPU recipe (one-cycle, lr 0.2, wd 5e-4, seed 0) for 2 epochs: minicnn (numba) then
# its PyTorch twin, each alone on the 2 cores, ROUNDS times alternating; per-epoch wall times
# compared (an epoch's work does not depend on the schedule's length). From the repository root.
set -u
D=benchmarks/cpu_results/amd-avx2-2026-12-07/resnet_epochs
FLAGS=(--schedule onecycle --epochs 2 --lr 0.2 --weight-decay 5e-4 --seed 0)
for r in $(seq "${ROUNDS:-1}"); do
  echo "# round $r $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD); uptime: $(uptime)" >> $D/run.log
  t0=$(date +%s)
  python -m experiments.resnet --backend numba "${FLAGS[@]}" --out /tmp/resnet_pair_m$r --no-progress > $D/minicnn_$(git rev-parse --short HEAD)_$r.log 2>&1
  echo "minicnn: $(( $(date +%s) - t0 )) s wall; uptime: $(uptime)" >> $D/run.log
  t0=$(date +%s)
  python -m benchmarks.torch_resnet "${FLAGS[@]}" --threads 2 --out /tmp/resnet_pair_t$r > $D/torch_$(git rev-parse --short HEAD)_$r.log 2>&1
  echo "PyTorch: $(( $(date +%s) - t0 )) s wall; uptime: $(uptime)" >> $D/run.log
done
