#!/usr/bin/env bash
# ResNet-20's 20-epoch one-cycle CPU recipe (issue 17), minicnn (numba) alone on the 2 cores, then
# its PyTorch twin alone (same flags, --threads 2), one after the other; from the repository root.
# uptime is logged every minute beside them (load.log), to show nothing else ran.
set -u
D=benchmarks/cpu_results/amd-avx2-2026-12-07/resnet20-20ep
FLAGS=(--schedule onecycle --epochs 20 --lr 0.2 --weight-decay 5e-4 --seed 0)
( while true; do echo "$(date -u +%T) $(uptime)"; sleep 60; done ) >> $D/load.log &
LOADER=$!
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD); uptime: $(uptime)" >> $D/run.log
echo "\$ python -m experiments.resnet --backend numba ${FLAGS[*]} --out /tmp/resnet20ep --no-progress" >> $D/run.log
t0=$(date +%s)
python -m experiments.resnet --backend numba "${FLAGS[@]}" --out /tmp/resnet20ep --no-progress > $D/train.log 2>&1
echo "minicnn: $(( $(date +%s) - t0 )) s wall, exit $?; $(date -u +%T) uptime: $(uptime)" >> $D/run.log
cp /tmp/resnet20ep/resnet/results.json $D/results.json
echo "\$ python -m benchmarks.torch_resnet ${FLAGS[*]} --threads 2 --out /tmp/resnet20ep_torch" >> $D/run.log
t0=$(date +%s)
python -m benchmarks.torch_resnet "${FLAGS[@]}" --threads 2 --out /tmp/resnet20ep_torch > $D/torch.log 2>&1
echo "PyTorch: $(( $(date +%s) - t0 )) s wall, exit $?; $(date -u +%T) uptime: $(uptime)" >> $D/run.log
cp /tmp/resnet20ep_torch/torch_resnet.json $D/torch_resnet.json
kill $LOADER
