#!/usr/bin/env bash
# Before/after throughput of two git revisions in one window: each revision is
# checked out into a temporary worktree and `benchmarks.throughput` runs from it,
# alternating A, B, A, B, ... for ROUNDS rounds, so that a machine whose speed
# drifts (a shared VM) slows both alike. Every run times PyTorch too, and the
# numba/PyTorch ratio of each run is what to compare across revisions.
#
#     bash benchmarks/compare_revisions.sh REV_A REV_B [ROUNDS] [-- throughput flags]
#     bash benchmarks/compare_revisions.sh 9dae473 HEAD 3 -- --backends numba --nets tutorial net2
#
# Needs the project's environment (python with minicnn's dependencies and torch);
# writes the logs to $OUT or benchmarks/results/compare/. Check `uptime` first:
# nothing else should be running.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: compare_revisions.sh REV_A REV_B [ROUNDS] [-- flags]}
B=${2:?usage: compare_revisions.sh REV_A REV_B [ROUNDS] [-- flags]}
shift 2
ROUNDS=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then ROUNDS=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
FLAGS=("$@")
[ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--backends numba --nets tutorial deconv net2 --batch-sizes 4 64 --repeats 5)
RES=${OUT:-benchmarks/results/compare}
mkdir -p "$RES"
PY=${PYTHON:-python}
TMP=$(mktemp -d)
trap 'git worktree remove --force "$TMP/a" 2>/dev/null; git worktree remove --force "$TMP/b" 2>/dev/null; rm -rf "$TMP"' EXIT
for side in a b; do
  rev=$A; [ $side = b ] && rev=$B
  git worktree add --detach -q "$TMP/$side" "$rev"
  # an uninstalled checkout: minicnn.kernels must resolve inside it, not to the installed copy
  [ -e "$TMP/$side/minicnn/kernels" ] || ln -s ../kernels "$TMP/$side/minicnn/kernels"
done
for round in $(seq "$ROUNDS"); do
  for side in a b; do
    rev=$A; [ $side = b ] && rev=$B
    echo "== round $round $side ($rev) $(uptime)" | tee -a "$RES/compare.log"
    (cd "$TMP/$side" && PYTHONPATH="$TMP/$side" "$PY" -m benchmarks.throughput "${FLAGS[@]}" --no-plot \
       --out "$TMP/out_${side}_$round") 2>&1 | tee "$RES/run_${round}_${side}.log" | grep -E '^\[' | tee -a "$RES/compare.log" \
      || { echo "compare_revisions: round $round $side failed, see $RES/run_${round}_${side}.log" >&2; exit 1; }
  done
done
echo "compare_revisions: log in $RES/compare.log"
