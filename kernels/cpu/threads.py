"""Batch-chunk parallelism for the CPU backend (table entry ``run_split``).

A large convolution is computed a batch chunk at a time (see
``minicnn/nn/conv.py``): im2col of the chunk, a GEMM, a store (col2im in
backward). The chunks are independent, so ``run_split`` hands them out to one
Python thread per core. Each thread runs the whole chunk pipeline: the Numba
kernels release the GIL (``nogil=True``, see ``_jit``) and so does NumPy's
matmul, and BLAS is held to one thread for the duration, so the cores are
never oversubscribed and nobody waits on a spinning BLAS worker. That keeps
both cores busy in im2col/col2im too, which a BLAS-threaded GEMM alone does not.

Why not Numba's own ``parallel=True`` inside each kernel: with the OpenMP
threading layer a parallel region waits for every worker at its closing
barrier, and right after a GEMM the second core is still held by OpenBLAS's
spinning worker, so each call stalled for milliseconds (see ``__init__``).

Determinism: ``items`` are dealt round-robin into ``workers`` shares, each
share is processed in order by one thread, and the caller combines the
per-share results in share order. The result therefore does not depend on
thread timing; it depends on the number of workers only through the order of
float additions in what the caller sums (for Conv2d: the weight gradient).

BLAS while the numba backend is selected: held at one thread
(``hold_blas``), not only inside ``run_split``. After a multi-threaded call,
OpenBLAS's idle workers spin for up to ~0.1 s before they sleep, and a
spinning worker holds a core that minicnn's next kernel or share needs; every
layer GEMM already runs inside ``run_split`` or is small (Linear), so one BLAS
thread costs nothing there. Measured on the 2-core dev box (Net2, batch 64,
training step, interleaved A/B, see benchmarks/README.md): BLAS threads
spinning made the split step slower than the serial one; held at one thread
the split step was the fastest.

``workers()`` is Numba's thread count (``NUMBA_NUM_THREADS`` /
``numba.set_num_threads``), so one setting governs every CPU thread minicnn uses.
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor, wait

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_controller = None
_local = threading.local()
_held = None  # the threadpoolctl limiter of hold_blas()


def workers() -> int:
    """Threads ``run_split`` uses: ``numba.get_num_threads()``."""
    import numba

    return max(1, int(numba.get_num_threads()))


def _get_pool(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="minicnn-cpu")
            _pool_size = n
        return _pool


def _blas_single_thread():
    """A context manager that holds BLAS (OpenBLAS, MKL, BLIS) to one thread."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _call(fn, share):
    _local.inside = True
    try:
        return fn(share)
    finally:
        _local.inside = False


def hold_blas() -> None:
    """Hold BLAS at one thread until ``release_blas()`` (the numba backend does
    this while it is selected; see the module docstring)."""
    global _held
    if _held is None:
        _held = _blas_single_thread()


def release_blas() -> None:
    """Give BLAS back the thread count it had before ``hold_blas()``."""
    global _held
    if _held is not None:
        _held.restore_original_limits()
        _held = None


def blas_held() -> bool:
    return _held is not None


def run_split(fn, items):
    """[fn(share) for share in shares], the shares run concurrently.

    items: a sequence (e.g. batch ranges ``[(start, stop), ...]``), dealt
    round-robin into ``min(workers(), len(items))`` shares: share t holds
    items t, t + T, t + 2T, ... in order. Returns the results in share order.
    With one share (one worker, one item, or a call made from inside a share)
    this is just ``[fn(list(items))]`` in the calling thread.
    """
    items = list(items)
    n = min(workers(), len(items))
    if n <= 1 or getattr(_local, "inside", False):
        return [fn(items)]
    shares = [items[t::n] for t in range(n)]
    pool = _get_pool(n)
    with contextlib.nullcontext() if _held is not None else _blas_single_thread():
        futures = [pool.submit(_call, fn, s) for s in shares]
        wait(futures)  # every share finishes before BLAS gets its threads back
    return [f.result() for f in futures]  # re-raises a share's exception


def run_split_reference(fn, items):
    """The serial definition: one share holding every item, in the calling thread."""
    return [fn(list(items))]
