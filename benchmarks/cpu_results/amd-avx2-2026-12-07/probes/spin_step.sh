#!/bin/bash
# Fresh processes alternating GNU OpenMP wait policies, 3 rounds (probes/spin_step.py).
# Usage: bash .../probes/spin_step.sh net batch
P=$(dirname "$0")
for round in 1 2 3; do
  for policy in default passive spin; do
    case $policy in
      default) env=() ;;
      passive) env=(OMP_WAIT_POLICY=PASSIVE) ;;
      spin) env=(GOMP_SPINCOUNT=INFINITE) ;;
    esac
    echo -n "round $round $policy: "
    env "${env[@]}" PYTHONPATH=. python "$P/spin_step.py" "$1" "$2" 3
  done
done
