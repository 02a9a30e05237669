"""Timing several runners of one configuration fairly on a shared machine
(``measure``: first call, calibration, interleaved rounds; see its docstring)."""

from __future__ import annotations

import math
import time

import numpy as np


def time_call(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def calibrate(runner, min_time: float, cap: int = 1 << 16) -> tuple[int, float]:
    """Steps per timed block so that a block lasts about ``min_time`` seconds.

    Runs blocks of 1, 4, 16, ... steps until one lasts >= min_time / 4 (these
    are also warm-up steps). Returns (k, estimated seconds per step).
    """
    n = 1
    while True:
        t = time_call(lambda: runner.run(n))
        if t >= min_time / 4 or n >= cap:
            break
        n *= 4
    per_step = t / n
    k = max(1, min(cap, math.ceil(min_time / max(per_step, 1e-9))))
    return k, per_step


SETTLE_S = 0.25  # idle time before each timed block (see measure)


def measure(runners: list, repeats: int, min_time: float, log=None) -> dict:
    """Time several runners of one configuration fairly on a shared machine.

    1. the first call of each runner alone: warm-up / JIT compile / cache load
       (``first_call_s``);
    2. calibration (also warm-up): steps per block ``k`` for each runner;
    3. ``repeats`` rounds, round-robin over the runners (so a burst of load
       from other processes hits all of them alike), each timing one block of
       k steps; the per-step time of a repeat is block time / k. Before each
       block the runner is made current, the machine is left idle for
       ``SETTLE_S`` and one untimed step is run: idle BLAS/OpenMP workers of
       the runner timed just before keep spinning for up to ~0.1 s (OpenBLAS)
       and would otherwise steal a core from this one.

    Returns {label: {...}}; a runner that raises gets ``error`` and is dropped.
    """
    res = {r.label: {"steps_per_repeat": 0, "step_times_s": [], "first_call_s": None, "error": None}
           for r in runners}
    live = []
    for r in runners:
        try:
            res[r.label]["first_call_s"] = time_call(lambda: r.run(1))
            live.append(r)
        except Exception as e:  # a backend under construction must not stop the whole run
            res[r.label]["error"] = f"{type(e).__name__}: {e}"
            if log:
                log(f"  {r.label}: first call failed: {res[r.label]['error']}")
    ks = {}
    for r in list(live):
        try:
            ks[r.label], _ = calibrate(r, min_time)
            res[r.label]["steps_per_repeat"] = ks[r.label]
        except Exception as e:
            res[r.label]["error"] = f"{type(e).__name__}: {e}"
            live.remove(r)
    for _ in range(repeats):
        for r in list(live):
            try:
                r.activate()
                time.sleep(SETTLE_S)
                r.run(1)
                t = time_call(lambda: r.run(ks[r.label]))
                res[r.label]["step_times_s"].append(t / ks[r.label])
            except Exception as e:
                res[r.label]["error"] = f"{type(e).__name__}: {e}"
                live.remove(r)
    for d in res.values():
        ts = d["step_times_s"]
        d["median_step_s"] = float(np.median(ts)) if ts else None
        d["min_step_s"] = float(min(ts)) if ts else None
        d["repeats"] = len(ts)
    return res
