"""What the user sees while a run trains: the epoch's progress bar, and the notice that
the numba backend compiles its kernels before the first step."""

from __future__ import annotations

from tqdm.auto import tqdm

from minicnn import backend

COMPILE_NOTICE = ("compiling kernels (first run only: numba keeps them in its on-disk cache); "
                  "the first step takes a few seconds")
MAYBE_COMPILE_NOTICE = ("the first step compiles the numba kernels, unless numba's on-disk cache holds them "
                        "(compiling kernels: first run only, a few seconds)")


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


def kernels_need_compiling() -> bool | None:
    """Whether the next step on the active backend will compile numba kernels.

    True: the backend is ``numba`` and its convolution kernel is neither compiled
    in this process nor in numba's on-disk cache (absent, or stale after an edit).
    False: another backend, or the kernels are ready. None: numba, but it cannot
    be told (numba's internals moved).
    """
    if backend.backend_name() != "numba":
        return False
    try:
        from minicnn.kernels.cpu import conv
        variants = (conv._im2col_ser, conv._im2col_par)  # the serial and the parallel build
        if any(d.signatures for d in variants):  # compiled (or loaded from the cache) in this process already
            return False
        return not any(d._cache._cache_file._load_index() for d in variants)  # {} when absent or stale
    except Exception:
        return None
