#!/usr/bin/env bash
# Final HEAD on the GPU: the prepared gpu_check.sh as it stands, then cupy eager training
# throughput of HEAD vs 9dae473 interleaved (2 rounds), all packed into one archive.
set -uo pipefail
cd "$(dirname "$0")"
R=/tmp/res; mkdir -p "$R"
OUT=$R/check bash benchmarks/gpu_check.sh .gpu-data > "$R/gpu_check.out" 2>&1; echo "gpu_check rc $?" | tee -a "$R/gpu_check.out"
tail -5 "$R/gpu_check.out"; grep -E "passed|failed|error" "$R/check/gpu_tests.log" | tail -3
for round in 1 2; do
  for tree in head base; do
    dir=$PWD; [ $tree = base ] && dir=$PWD/../.gpu-base
    echo "== round $round $tree" | tee -a "$R/eager.log"
    (cd "$dir" && PYTHONPATH=$dir PYTHONUNBUFFERED=1 timeout 60 python -m benchmarks.throughput --backends cupy --device cuda \
       --modes train --nets tutorial net2 --batch-sizes 64 256 --repeats 3 --no-plot --out /tmp/e_${tree}_$round) 2>&1 \
       | grep -E '^\[' | tee -a "$R/eager.log"
  done
done
tar -czf "${OUT:-/tmp}/results.tar.gz" -C "$R" .
echo done
