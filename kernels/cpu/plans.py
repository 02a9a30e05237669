"""What a kernel call works out from shapes alone, worked out once per shape.

Before a register-blocked kernel runs, its Python wrapper decides from the shapes, the batch
ranges and a few module switches: the ranges' ``bounds`` array, the tile, the compiled copy's
constants, the padded planes' geometry, the scratch lengths. None of it depends on the values
in the arrays, and a training step asks the same questions with the same shapes every step.
A ``Plans`` table keeps each answer (a *plan*) under a key holding everything it was worked out
from, so the next call with that key looks it up instead (at batch 4 the wrapper's Python took
longer than some of the kernels it wraps: benchmarks/notes/cpu-overhead.md).

A plan never holds an array of values, only shapes and the arrays built from shapes (``bounds``,
``grid``), which the kernels read and never write. The rule for a key: every argument and every
module switch the plan's maker reads must be in it, so that changing a switch (as
``benchmarks/fusion_ab.py`` and the tests do) makes a new plan instead of finding the old one.
"""

from __future__ import annotations


class Plans:
    """A table of plans by key (see the module doc). ``get(key, make, *args)``: the plan
    stored under ``key``, or ``make(*args)`` stored there first. Errors raised by ``make``
    (a wrong shape, bad ranges) are not stored: the next call raises them again. The table is
    emptied when it holds ``limit`` plans (a run sees a handful of shapes; this bounds one
    that sees new ones every call)."""

    __slots__ = ("_table", "limit")

    enabled = True  # False: every call works its plan out again (``benchmarks/fusion_ab.py --switch plans``)

    def __init__(self, limit: int = 4096):
        self._table: dict = {}
        self.limit = int(limit)

    def get(self, key, make, *args):
        if not Plans.enabled:
            return make(*args)
        plan = self._table.get(key)
        if plan is None:
            plan = make(*args)
            if len(self._table) >= self.limit:
                self._table.clear()
            self._table[key] = plan
        return plan

    def __len__(self) -> int:
        return len(self._table)


def ranges_key(ranges):
    """A hashable form of batch ranges ``[(start, stop), ...]`` (None stays None)."""
    return None if ranges is None else tuple(map(tuple, ranges))
