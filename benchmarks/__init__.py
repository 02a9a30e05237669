"""Benchmarks for minicnn: throughput (vs PyTorch), per-layer profile, peak memory.

    python -m benchmarks.throughput      # images/s and GFLOP/s, every backend vs PyTorch
    python -m benchmarks.layer_profile   # per-module forward/backward times of one net
    python -m benchmarks.memory          # peak RSS of a batch-256 Net2 training step

See ``benchmarks/README.md``.
"""
