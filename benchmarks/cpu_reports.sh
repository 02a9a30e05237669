#!/usr/bin/env bash
# The report experiments (issue 15) on the CPU: minicnn (numba) and its PyTorch twin on the
# same cores, same data, seeds and batches.
#
#   bash benchmarks/cpu_reports.sh OUT EXPERIMENT "SEEDS" [experiment flags ...]
#   bash benchmarks/cpu_reports.sh benchmarks/cpu_results/mnist5k-5ep mnist "0 1 2" \
#        --data-dir ../shared/data/mnist-5k
#   CONCURRENT=1 bash benchmarks/cpu_reports.sh benchmarks/cpu_results/threeblock-base threeblock 0 --variants base
#
# For each seed: `python -m experiments.EXPERIMENT --backend numba --seed S --out OUT/minicnn-seedS ...`,
# then `python -m benchmarks.torch_reports --experiment EXPERIMENT --seeds SEEDS --threads
# $THREADS --json-out OUT ...`, one after the other with THREADS = $(nproc) threads each.
# CONCURRENT=1: both sides at the same time with one thread each (THREADS=1), one core
# apiece: about twice the accuracy runs per hour on 2 cores; the wall times are then
# one-thread times measured side by side, not 2-core times.
# Writes OUT/run.log (commands, load, wall seconds of each command) and OUT/summary.md
# (python -m benchmarks.report_table OUT). Figures stay in the first seed's minicnn folder;
# the checkpoints (*.npz) and the other seeds' figures are deleted so that OUT can be
# committed (about 1 MB per experiment).
# TWIN_ONLY=1: run only the twin again, into an OUT that holds a finished minicnn side (after
# a change to the twin, e.g. its dropout masks); the previous twin's json and log move to
# OUT/previous-twin/, and summary.md is written again.
set -euo pipefail
OUT=$1; EXP=$2; SEEDS=$3; shift 3
CONCURRENT=${CONCURRENT:-0}
if [ "$CONCURRENT" = 1 ]; then THREADS=${THREADS:-1}; else THREADS=${THREADS:-$(nproc)}; fi
mkdir -p "$OUT"
LOG="$OUT/run.log"
log() { echo "$*" | tee -a "$LOG"; }
log "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes') threads $THREADS concurrent $CONCURRENT"
log "# uptime: $(uptime)"
log "# cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores"
log "# OpenBLAS kernels: $(python -c 'from benchmarks import machine; print(*[b["corename"] for b in machine.blas_threads() if b["api"] == "openblas"])' 2>/dev/null || echo '?') (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"

run_torch() {
    local cmd=(python -m benchmarks.torch_reports --experiment "$EXP" --seeds $SEEDS --threads "$THREADS"
               --json-out "$OUT" "$@")
    log "\$ ${cmd[*]}"
    local t0; t0=$(date +%s.%N)
    "${cmd[@]}" > "$OUT/torch.log" 2>&1
    log "PyTorch seeds $SEEDS: $(echo "$(date +%s.%N) - $t0" | bc) s wall"
}

if [ "${TWIN_ONLY:-0}" = 1 ]; then
    [ -e "$OUT/torch_$EXP.json" ] || { echo "TWIN_ONLY: no $OUT/torch_$EXP.json to run again" >&2; exit 2; }
    mkdir -p "$OUT/previous-twin"
    mv "$OUT/torch_$EXP.json" "$OUT/torch.log" "$OUT/previous-twin/"
    log "# TWIN_ONLY: the previous twin's json and log are in $OUT/previous-twin/"
    run_torch "$@"
    log "# uptime: $(uptime)"
    python -m benchmarks.report_table "$OUT" | tee "$OUT/summary.md"
    exit 0
fi
torch_pid=
if [ "$CONCURRENT" = 1 ]; then run_torch "$@" & torch_pid=$!; fi
for s in $SEEDS; do
    cmd=(python -m "experiments.$EXP" --backend numba --seed "$s" --out "$OUT/minicnn-seed$s" --no-progress "$@")
    log "\$ NUMBA_NUM_THREADS=$THREADS ${cmd[*]}"
    t0=$(date +%s.%N)
    NUMBA_NUM_THREADS=$THREADS "${cmd[@]}" > "$OUT/minicnn-seed$s.log" 2>&1
    log "minicnn seed $s: $(echo "$(date +%s.%N) - $t0" | bc) s wall"
done
if [ -n "$torch_pid" ]; then wait "$torch_pid"; else log "# uptime: $(uptime)"; run_torch "$@"; fi
log "# uptime: $(uptime)"
find "$OUT" -name '*.npz' -delete
first=${SEEDS%% *}
for s in $SEEDS; do [ "$s" = "$first" ] || find "$OUT/minicnn-seed$s" -name '*.png' -delete; done
python -m benchmarks.report_table "$OUT" | tee "$OUT/summary.md"
