#!/usr/bin/env bash
# The report experiments (issue 15) on the CPU: minicnn (numba) and its PyTorch twin,
# one after the other on the same cores, same data, seeds and batches.
#
#   bash benchmarks/cpu_reports.sh OUT EXPERIMENT "SEEDS" [experiment flags ...]
#   bash benchmarks/cpu_reports.sh benchmarks/cpu_results/mnist5k-5ep mnist "0 1 2" \
#        --data-dir ../shared/data/mnist-5k
#
# For each seed: `python -m experiments.EXPERIMENT --backend numba --seed S --out OUT/minicnn-seedS ...`,
# then `python -m benchmarks.torch_reports --experiment EXPERIMENT --seeds SEEDS --threads
# $(nproc) --json-out OUT ...`. Writes OUT/run.log (commands, load, wall seconds of each
# command) and OUT/summary.md (python -m benchmarks.report_table OUT). Figures stay in the
# minicnn folders; the checkpoints (*.npz) are deleted so that OUT can be committed.
set -euo pipefail
OUT=$1; EXP=$2; SEEDS=$3; shift 3
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
LOG="$OUT/run.log"
log() { echo "$*" | tee -a "$LOG"; }
log "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes') threads $THREADS"
log "# uptime: $(uptime)"
for s in $SEEDS; do
    cmd=(python -m "experiments.$EXP" --backend numba --seed "$s" --out "$OUT/minicnn-seed$s" --no-progress "$@")
    log "\$ NUMBA_NUM_THREADS=$THREADS ${cmd[*]}"
    t0=$(date +%s.%N)
    NUMBA_NUM_THREADS=$THREADS "${cmd[@]}" > "$OUT/minicnn-seed$s.log" 2>&1
    log "minicnn seed $s: $(echo "$(date +%s.%N) - $t0" | bc) s wall"
done
cmd=(python -m benchmarks.torch_reports --experiment "$EXP" --seeds $SEEDS --threads "$THREADS" --json-out "$OUT" "$@")
log "# uptime: $(uptime)"
log "\$ ${cmd[*]}"
t0=$(date +%s.%N)
"${cmd[@]}" > "$OUT/torch.log" 2>&1
log "PyTorch seeds $SEEDS: $(echo "$(date +%s.%N) - $t0" | bc) s wall"
find "$OUT" -name '*.npz' -delete
python -m benchmarks.report_table "$OUT" | tee "$OUT/summary.md"
