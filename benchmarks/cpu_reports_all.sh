#!/usr/bin/env bash
# Every measurement behind the README's table of the report experiments (issue 15), in order,
# each by benchmarks/cpu_reports.sh into benchmarks/cpu_results/<name>/. A folder that already
# holds its summary.md is skipped and an unfinished one is started again, so successive
# sessions continue where the last one stopped (commit only folders with a summary.md).
#
#   bash benchmarks/cpu_reports_all.sh            # from the repository root, the machine otherwise idle
#   bash benchmarks/cpu_reports_all.sh --list     # what is done and what is left
#
# Runs that take under 10 minutes here get 3 seeds, the others 1 (the issue's rule). The long
# CIFAR-10 runs go CONCURRENT=1 (minicnn and its twin side by side, one thread each); their
# wall times are one-thread times.
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/cpu_results
MNIST5K=../shared/data/mnist-5k
FASHION=../shared/data/fashion-mnist
LIST=${1:-}

step() {  # step NAME CONCURRENT EXPERIMENT "SEEDS" [flags ...]
    local name=$1 concurrent=$2; shift 2
    if [ -e "$R/$name/summary.md" ]; then echo "done: $name"; return; fi
    if [ "$LIST" = --list ]; then echo "left: $name ($*)"; return; fi
    rm -rf "${R:?}/$name"
    CONCURRENT=$concurrent bash benchmarks/cpu_reports.sh "$R/$name" "$@"
}

step mnist5k-5ep 0 mnist "0 1 2" --data-dir "$MNIST5K"                                   # 1.2 min here (run.log)
step mnist5k-20ep 0 mnist "0 1 2" --data-dir "$MNIST5K" --epochs 20                      # 3.4 min here (run.log)
step fashion-5ep 0 mnist "0 1 2" --dataset fashion-mnist --data-dir "$FASHION"
step cifar-small-35ep 0 cifar_small 0
step threeblock-base 1 threeblock 0 --variants base
step threeblock-net1 1 threeblock 0 --variants net1
step threeblock-net2 1 threeblock 0 --variants net2
step threeblock-tuned 1 threeblock 0 --variants tuned
step dropout-p0 1 dropout_study 0 --rates 0
step dropout-p0.2 1 dropout_study 0 --rates 0.2
step dropout-p0.5 1 dropout_study 0 --rates 0.5
step dropout-p0.8 1 dropout_study 0 --rates 0.8
step dropout-tuned 1 dropout_study 0 --rates --tuned
