"""Which of two ways runs a conv layer's shares on the CPU (the CPU schedule's ``split``).

The CPU conv schedule can use the other cores in two ways (``threads.py``):

* ``run_split`` ("threads") runs the shares on different cores, each product on one
  BLAS thread, with im2col/col2im inside the shares on every core too;
* ``run_shares_blas_threads`` ("blas") runs the shares one after another, each
  product on all of BLAS's threads.

Every call goes the "threads" way by default. The "blas" way was the rule for a small batch
(at most 2 samples per worker in more than one range) until the direct kernels moved to
Numba's OpenMP threads (``threads.numba_team``): its few small per-sample products gained
more from BLAS's threads than from running side by side (whole training steps on a 2-vCPU
Intel VM, rule time / "threads" time: batch 4 Net2 0.94-0.98, ResNet-20 0.83-0.99;
benchmarks/notes/cpu-kernels.md, "Two ways to use the second core"). But OpenBLAS's idle
workers spin for up to ~0.1 s after a threaded product, and OpenMP's after a parallel
region: each then waits for the core the other holds. With both, ResNet-20's batch-4 step
(two stride-2 convs on the "blas" way, the rest direct) took 50.8-77.8 ms; with "threads"
for every call 15.2 ms, where it took 27.0-27.1 ms before the direct kernels used Numba's
threads (benchmarks/notes/cpu-direct.md, "Batch ranges on Numba's threads").
``SplitChooser(small="blas")`` or ``MINICNN_CPU_SPLIT=blas`` still ask for that way.

The rule is fixed, not timed (as cuDNN's benchmark mode would): the two ways deal the
same shares and sum them in the same order, but one BLAS product can round differently
with another thread count (OpenBLAS's float64 products of some shapes do), and a choice
made by timing would make the numbers depend on the machine's load. A product outside
the conv schedule (a Linear layer's) runs at the count the conv call before it left.

``MINICNN_CPU_SPLIT``: ``auto`` (the default: the rule, so "threads" for every call), or
``threads`` / ``blas`` for every call. The direct kernels take no split: they run their
batch ranges on Numba's threads themselves (``direct.py``).
"""

from __future__ import annotations

import os

from . import threads

WAYS = {"threads": threads.run_split, "blas": threads.run_shares_blas_threads}


class SplitChooser:
    """``split(fn, items)`` for ``ConvSchedule``: items are batch ranges ``(start, stop)``;
    ``small`` (default "threads", see the module doc) runs a call of more than one range with
    at most ``max_samples_per_worker * workers()`` samples, ``large`` (default "threads") any
    other. ``force``: one way's name for every call."""

    def __init__(self, *, small: str = "threads", large: str = "threads", max_samples_per_worker: int = 2,
                 force: str | None = None):
        for name in (small, large, force):
            if name is not None and name not in WAYS:
                raise ValueError(f"SplitChooser: unknown way {name!r}; expected one of {', '.join(map(repr, WAYS))}")
        self.small, self.large, self.force = small, large, force
        self.max_samples_per_worker = int(max_samples_per_worker)

    def way(self, items) -> str:
        """The name of the way that runs these ranges: ``large`` for a single range (a layer
        below the split's size runs in the caller either way; "threads" runs it with BLAS
        at one thread, as before the rule)."""
        if self.force is not None:
            return self.force
        samples = sum(stop - start for start, stop in items)
        small = len(items) > 1 and samples <= self.max_samples_per_worker * threads.workers()
        return self.small if small else self.large

    def __call__(self, fn, items):
        items = list(items)
        return WAYS[self.way(items)](fn, items)

    @staticmethod
    def workers() -> int:
        """The threads a call's shares run on (one per core)."""
        return threads.workers()


def from_environment(variable: str = "MINICNN_CPU_SPLIT") -> SplitChooser:
    """The rule, or one way for every call when the environment variable names it
    (``auto`` or unset: the rule)."""
    value = os.environ.get(variable, "").strip().lower()
    if value not in ("", "auto") and value not in WAYS:
        raise ValueError(f"{variable}={value!r}: expected 'auto' or one of {', '.join(map(repr, WAYS))}")
    return SplitChooser(force=None if value in ("", "auto") else value)
