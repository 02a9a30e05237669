#!/usr/bin/env bash
# The README's refreshed numbers, one after another, nothing else running; from the repository
# root with the project's venv. Writes run.log (commands, uptime, wall times) and the outputs here.
# 1. the first run's compile time: task1 and task2 on 2 % of CIFAR-10 (1 epoch), each with an
#    empty Numba cache of its own and then again with the cache it wrote;
# 2. the default task2 (numba and numpy) and task1 (numba), as the README's table has them (the
#    kernels in the cache by then);
# 3. the whole throughput table against PyTorch.
set -u
D=benchmarks/cpu_results/amd-avx2-2026-12-07/readme_refresh
log() { echo "$*" >> $D/run.log; }
timed() {  # timed NAME CMD...: runs CMD, its output into NAME.log, its wall time into run.log
    local name=$1; shift
    log "\$ $*    # $(date -u +%T), $(uptime | sed 's/.*load/load/')"
    local t0; t0=$(date +%s.%N)
    "$@" > $D/$name.log 2>&1
    local rc=$?
    log "$name: $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s wall, exit $rc"
}
log "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD); $(uptime)"
export PYTHONPATH=. MPLBACKEND=Agg
rm -rf /tmp/refresh /tmp/numba-cache-task1 /tmp/numba-cache-task2
for task in task1 task2; do  # each task with a Numba cache of its own, empty at first
  for cache in empty warm; do
    NUMBA_CACHE_DIR=/tmp/numba-cache-$task timed ${task}_compile_$cache python -m experiments.$task --backend numba \
      --subset 0.02 --epochs 1 --no-progress --out /tmp/refresh/compile_$cache
  done
done
NUMBA_CACHE_DIR=/tmp/numba-cache-task2 timed task2_numba python -m experiments.task2 --backend numba --no-progress \
  --out /tmp/refresh/numba
NUMBA_CACHE_DIR=/tmp/numba-cache-task1 timed task1_numba python -m experiments.task1 --backend numba --no-progress \
  --out /tmp/refresh/numba
timed task2_numpy python -m experiments.task2 --no-progress --out /tmp/refresh/numpy
for f in /tmp/refresh/numba/task1 /tmp/refresh/numba/task2 /tmp/refresh/numpy/task2; do
  python3 -c "import json,sys; d=json.load(open('$f/results.json')); print('$f', 'accuracy', d.get('test_accuracy'), 'epochs', [round(t,1) for t in d['wall_time_per_epoch_s']], 'total', round(d['total_wall_time_s'],1), 'mse', d.get('test_mse', d.get('reconstruction_mse')))" >> $D/run.log
  cp $f/results.json $D/$(basename $(dirname $f))_$(basename $f)_results.json
done
timed throughput python -m benchmarks.throughput --backends numba --nets tutorial deconv net2 resnet20 \
  --batch-sizes 4 64 256 --threads 2 --out $D/throughput
log "# done $(date -u +%T); $(uptime)"
