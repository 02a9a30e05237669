"""Which of two ways runs a conv layer's shares on the CPU (the CPU schedule's ``split``).

The CPU conv schedule can use the other cores in two ways (``threads.py``):

* ``run_split`` ("threads") runs the shares on different cores, each product on one
  BLAS thread, with im2col/col2im inside the shares on every core too;
* ``run_shares_blas_threads`` ("blas") runs the shares one after another, each
  product on all of BLAS's threads.

For a small batch the second is faster: its few small per-sample products gain more
from BLAS's threads than from running side by side (on a 2-vCPU Intel VM two
single-threaded products at once each ran at 0.6x the speed of one alone, while
OpenBLAS's two threads ran the same per-sample products 1.4x faster). Whole training steps there, rule
time / "threads" time, in one process, blocks alternating: batch 4 Net2 0.94-0.98,
ResNet-20 0.83-0.99; at batch 8 the "blas" way was slower (Net2 1.07, ResNet-20 1.03),
so the rule stops at 2 samples per worker (benchmarks/notes/cpu-kernels.md, "Two ways
to use the second core"). A call of one range (a layer below the split's size: every
conv of the tutorial net and DeconvNet at batch 4) goes the "threads" way, which runs
it in the caller with BLAS at one thread, as before.

So each conv call's BLAS thread count follows from its own ranges and ``workers()``
alone. A product outside the conv schedule (a Linear layer's) runs at the count the
conv call before it left: in the seed nets every Linear follows a conv of the same
forward or backward pass, so it too is the same in every step. (This matters because
one BLAS product can round differently at another thread count.)

The rule is fixed, not timed (as cuDNN's benchmark mode would): the two ways deal the
same shares and sum them in the same order, but one BLAS product can round differently
with another thread count (OpenBLAS's float64 products of some shapes do), and a choice
made by timing would make the numbers depend on the machine's load.

Calls with no BLAS product inside (the direct kernels of ``direct.py``) take
``for_loops``: always the "threads" way, since on BLAS's threads they would run on one core.

``MINICNN_CPU_SPLIT``: ``auto`` (the default: the rule), or ``threads`` / ``blas`` for
every call.
"""

from __future__ import annotations

import os

from . import threads

WAYS = {"threads": threads.run_split, "blas": threads.run_shares_blas_threads}


class SplitChooser:
    """``split(fn, items)`` for ``ConvSchedule``: items are batch ranges ``(start, stop)``;
    ``small`` (default "blas") runs a call of more than one range with at most
    ``max_samples_per_worker * workers()`` samples, ``large`` (default "threads") any
    other. ``force``: one way's name for every call."""

    def __init__(self, *, small: str = "blas", large: str = "threads", max_samples_per_worker: int = 2,
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

    def for_loops(self, fn, items):
        """The shares of a call with no BLAS product inside (the direct kernels): on one thread
        per core ("threads"), whatever their size, since BLAS's threads would leave them on one
        core; ``force`` still applies."""
        return WAYS[self.force if self.force is not None else "threads"](fn, list(items))


def from_environment(variable: str = "MINICNN_CPU_SPLIT") -> SplitChooser:
    """The rule, or one way for every call when the environment variable names it
    (``auto`` or unset: the rule)."""
    value = os.environ.get(variable, "").strip().lower()
    if value not in ("", "auto") and value not in WAYS:
        raise ValueError(f"{variable}={value!r}: expected 'auto' or one of {', '.join(map(repr, WAYS))}")
    return SplitChooser(force=None if value in ("", "auto") else value)
