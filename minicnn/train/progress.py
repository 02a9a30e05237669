"""What the user sees while a run trains: the epoch's progress bar, and the notice that
the numba backend is compiling its kernels when a run's first step is slow."""

from __future__ import annotations

import threading

from tqdm.auto import tqdm

from minicnn import backend

COMPILE_NOTICE = ("compiling kernels (first run only: numba keeps them in its on-disk cache); "
                  "the first step may take a minute")

#: A run's first step on numba slower than this is taken to be compiling: task1 on 2 % of the
#: data took 4.5 s in all with the kernels in numba's cache and 27.7 s compiling them
#: (benchmarks/cpu_results/amd-avx2-2026-12-07/readme_refresh/run.log); once compiled, the
#: slowest step of its throughput table (ResNet-20, batch 256) takes 0.72 s.
COMPILE_NOTICE_AFTER_S = 5.0


class FirstStepNotice:
    """``with FirstStepNotice(log):`` around a run's first training step: on the numba backend,
    if the step is still running after ``COMPILE_NOTICE_AFTER_S`` seconds (numba compiling the
    kernels its on-disk cache does not hold yet), ``log(COMPILE_NOTICE)`` from a timer thread.
    Told by the clock rather than foretold: which kernels a step compiles depends on the
    model, its shapes and what the cache already holds. ``fired``: whether the notice went out."""

    def __init__(self, log):
        self._log = log
        self.fired = False
        self._timer = None

    def _fire(self) -> None:
        self.fired = True
        self._log(COMPILE_NOTICE)

    def __enter__(self) -> "FirstStepNotice":
        if backend.backend_name() == "numba":
            self._timer = threading.Timer(COMPILE_NOTICE_AFTER_S, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> bool:
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()  # a notice being written finishes before the step's own lines
        return False


class EpochBar:
    """A tqdm bar over one epoch's batches; ``show(batch)`` moves it to ``batch`` (tqdm counts increments)."""

    def __init__(self, total: int, start: int, desc: str, enabled: bool):
        self.bar = tqdm(total=total, initial=start, desc=desc, unit="batch", disable=not enabled,
                        dynamic_ncols=True, leave=False)
        self.shown = start

    def show(self, batch: int, text: str | None = None) -> None:
        self.bar.update(batch - self.shown)
        self.shown = batch
        if text is not None:
            self.bar.set_postfix_str(text, refresh=False)

    def restart_clock(self) -> None:
        """Leave the time so far out of the rate and ETA (e.g. a first step that compiled kernels)."""
        self.bar.unpause()

    def close(self, batch: int) -> None:
        self.show(batch)
        self.bar.close()
