"""Batch-chunk parallelism for the CPU backend: ``run_split`` and ``run_shares_blas_threads``,
the two ways the conv schedule's ``split`` (``split_chooser.py``) runs a layer's shares, and
``numba_team``, which lets the direct kernels run their batch ranges on Numba's own threads
(and ``element_wise`` the fused ReLU + max-pool, batch norm and ReLU their parallel builds).

A large convolution is computed a batch chunk at a time (see
``minicnn/nn/conv.py``): im2col of the chunk, a GEMM, a store (col2im in
backward). The chunks are independent, so ``run_split`` hands them out to one
Python thread per core. Each thread runs the whole chunk pipeline: the Numba
kernels release the GIL (``nogil=True``, see ``_jit``) and so does NumPy's
matmul, and BLAS is held to one thread for the duration, so the cores are
never oversubscribed and nobody waits on a spinning BLAS worker. That keeps
both cores busy in im2col/col2im too, which a BLAS-threaded GEMM alone does not.

Why not Numba's own ``parallel=True`` inside each kernel here: a chunk's
GEMM is NumPy's (BLAS), which a Numba kernel cannot call; and with the OpenMP
threading layer a parallel region waits for every worker at its closing
barrier, so right after a threaded GEMM, while OpenBLAS's worker still spins on
the second core, each call stalled for milliseconds (see ``__init__``). The
direct convolutions have no GEMM: they run their batch ranges in one
``parallel=True`` kernel (``numba_team``), which is why BLAS now stays at one
thread by default (``split_chooser.py``).

Determinism: ``items`` are dealt round-robin into ``workers`` shares, each
share is processed in order by one thread (or, in the serial fallbacks, the
same shares one after another), and the caller combines the per-share results
in share order. The result therefore does not depend on thread timing; it
depends on the number of workers only through the order of float additions
in what the caller sums (for Conv2d: the weight gradient).

Fork: a forked child starts with no helper threads and fresh locks
(``os.register_at_fork``), so a multiprocessing worker can use the split.

BLAS while the numba backend is selected: held at one thread
(``hold_blas``), not only inside ``run_split``, except after a small batch's
conv call (below). After a multi-threaded call,
OpenBLAS's idle workers spin for up to ~0.1 s before they sleep, and a
spinning worker holds a core that minicnn's next kernel or share needs; every
layer GEMM already runs inside ``run_split`` or is small (Linear), so one BLAS
thread costs nothing there (spinning BLAS threads made the split step slower
than a serial one; benchmarks/notes/history.md).

The other way to use the cores, ``run_shares_blas_threads`` (the conv schedule's
choice for a small batch, ``split_chooser.py``), needs BLAS's threads instead: it
sets BLAS to ``workers()`` threads and leaves it there, and the next ``run_split``
sets it back to one. So while a model trains at a small batch BLAS stays at
``workers()`` threads for the whole step (no helper thread then needs the other
core, and BLAS's workers stay awake between products), at a large batch at one;
raising and lowering it around each conv call instead made the tutorial net's
batch-4 step 1.18x as long (benchmarks/notes/cpu-kernels.md, "Two ways to use the
second core").

``workers()`` is Numba's thread count (``NUMBA_NUM_THREADS`` /
``numba.set_num_threads``), so one setting governs every CPU thread minicnn uses.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading

_controller = None
_held = None  # the threadpoolctl limiter of hold_blas()
_blas_now = None  # BLAS's thread count while held (1, or workers() after a small batch's conv call)
_blas_libs = None  # threadpoolctl's controllers of the loaded BLAS libraries, looked up once

# Helper threads, each fed through its own SimpleQueue (a C-level queue: the
# cheapest hand-over measured, benchmarks/notes/history.md). The calling thread
# runs share 0 itself. One caller at a time uses them (_busy); a concurrent
# caller from another thread runs the same shares one after another instead.
_helpers: list = []
_helpers_lock = threading.Lock()
_busy = threading.Lock()
_local = threading.local()


_forked = False  # this process is a forked child (Numba's own threads are not used here, ``numba_team``)


def _reset_after_fork() -> None:
    """In a forked child the helper threads do not exist (only the forking
    thread is copied) and a lock may have been held at the fork: start afresh."""
    global _helpers, _helpers_lock, _busy, _local, _forked
    _helpers, _helpers_lock, _busy, _local = [], threading.Lock(), threading.Lock(), threading.local()
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def workers() -> int:
    """Threads ``run_split`` uses, the caller included: ``numba.get_num_threads()``."""
    import numba

    return max(1, int(numba.get_num_threads()))


def _helper_loop(inbox):
    _local.inside = True  # a share that calls run_split again runs it serially
    while True:
        fn, share, outbox = inbox.get()
        try:
            outbox.put((True, fn(share)))
        except BaseException as e:  # handed back to the caller, which re-raises it
            outbox.put((False, e))
        fn = share = outbox = None  # keep nothing of the job (its arrays) alive while idle


def _get_helpers(n: int) -> list:
    """At least n helper inboxes (threads are started once and kept, daemonic)."""
    with _helpers_lock:
        while len(_helpers) < n:
            inbox = queue.SimpleQueue()
            t = threading.Thread(target=_helper_loop, args=(inbox,), daemon=True,
                                 name=f"minicnn-cpu-{len(_helpers) + 1}")
            t.start()
            _helpers.append(inbox)
        return _helpers[:n]


def _blas_single_thread(controller=None):
    """A context manager that holds BLAS (OpenBLAS, MKL, BLIS) to one thread."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if controller is None:
        if _controller is None:
            _controller = ThreadpoolController()
        controller = _controller
    return controller.limit(limits=1, user_api="blas")


def hold_blas() -> None:
    """Hold BLAS at one thread until ``release_blas()`` (the numba backend does
    this while it is selected; see the module docstring). The first call looks
    the BLAS libraries up afresh, so one loaded since the last hold is held too.
    Called again while held: BLAS back at one thread (a small batch's conv
    calls leave it at ``workers()``)."""
    global _held, _blas_libs, _blas_now
    if _held is None:
        from threadpoolctl import ThreadpoolController

        _held = _blas_single_thread(ThreadpoolController())
        _blas_libs = None
    else:
        _set_blas(1)
    _blas_now = 1


def release_blas() -> None:
    """Give BLAS back the thread count it had before ``hold_blas()``."""
    global _held, _blas_now
    if _held is not None:
        _held.restore_original_limits()
        _held = None
        _blas_now = None


def blas_held() -> bool:
    return _held is not None


def _numba_parallel_on() -> bool:
    from . import parallel_enabled

    return parallel_enabled()


def _shares(items) -> list:
    """items dealt round-robin into ``min(workers(), len(items))`` shares (one share when
    that is 1 or less): share t holds items t, t + T, t + 2T, ... in order."""
    n = min(workers(), len(items))
    return [items[t::n] for t in range(n)] if n > 1 else [items]


def run_split(fn, items):
    """[fn(share) for share in shares], the shares run concurrently.

    items: a sequence (e.g. batch ranges ``[(start, stop), ...]``), dealt
    round-robin into ``min(workers(), len(items))`` shares: share t holds
    items t, t + T, t + 2T, ... in order. Returns the results in share order.
    Share 0 runs in the calling thread, the others in helper threads; if
    shares raise, the first failing share's exception (in share order) is
    re-raised after all shares have ended.

    The shares run one after another in the calling thread instead when there
    is one, when the call comes from inside a share, while another thread is
    using the helpers, or while Numba's own parallel kernels are on
    (``set_parallel``: they already use every core, and Numba's workqueue
    layer aborts on concurrent use). The shares, and so the results, are the
    same either way. While BLAS is held, it runs at one thread here (set back
    from where ``run_shares_blas_threads`` left it), except inside a share or
    while another thread has the helpers, where it is left as it is.
    """
    items = list(items)
    shares = _shares(items)
    n = len(shares)
    if getattr(_local, "inside", False) or not _busy.acquire(blocking=False):
        return [fn(share) for share in shares]
    try:
        if _held is not None and _blas_now != 1:  # left at workers() by run_shares_blas_threads
            _set_held_blas(1)
        if n <= 1 or _numba_parallel_on():
            return [fn(share) for share in shares]
        outboxes = []
        rest = []
        with contextlib.nullcontext() if _held is not None else _blas_single_thread():
            try:
                for inbox, share in zip(_get_helpers(n - 1), shares[1:]):
                    outboxes.append(queue.SimpleQueue())
                    inbox.put((fn, share, outboxes[-1]))
                first = _run_here(fn, shares[0])
                for box in outboxes:
                    rest.append(box.get())
            except BaseException:  # e.g. KeyboardInterrupt while waiting: let the helpers finish first
                for box in outboxes[len(rest):]:
                    box.get()
                raise
    finally:
        _busy.release()
    results = [first] + rest
    for ok, value in results:
        if not ok:
            raise value
    return [value for _, value in results]


class numba_team:
    """``with numba_team(parts) as together:`` whether a kernel may run its ``parts`` batch
    ranges at once on Numba's own threads now (its ``parallel=True`` build, one ``prange``
    iteration per range) rather than one after another in the calling thread. The ranges
    and so the numbers are the same either way; only who runs them differs.

    Why Numba's threads: handing a share to a helper thread of ``run_split`` and getting its
    result back cost 85-95 us on a 2-vCPU VM (the helper sleeps on a queue, then on the GIL),
    a Numba parallel region 2-5 us (its OpenMP workers wait spinning), and Net2's conv calls
    at batch 4 take 0.2-2 ms (benchmarks/notes/cpu-direct.md, "Batch ranges on Numba's
    threads").

    Together only with more than one range and one worker, and not inside a ``run_split``
    share, not while another thread holds the helpers or such a kernel (the same lock as
    ``run_split``: Numba's workqueue layer aborts on concurrent use), and not in a forked
    child (GNU OpenMP, Numba's layer on Linux, terminates a child that starts a parallel
    region after its parent did). BLAS, while held, is set back to one thread as
    ``run_split`` does, so the Linear products after a conv call see the same count as
    before.

    A class rather than a ``contextlib.contextmanager`` generator: it is entered around every
    direct conv kernel and element-wise call (ResNet-20's batch-4 step: ~90 times), and the
    generator's entry and exit took 4.3 us a time here against the class's 3.3 (most of that
    ``numba.get_num_threads()``; benchmarks/notes/cpu-overhead.md)."""

    __slots__ = ("parts", "locked")

    def __init__(self, parts: int):
        self.parts = parts
        self.locked = False

    def __enter__(self) -> bool:
        if getattr(_local, "inside", False) or not _busy.acquire(blocking=False):
            return False
        try:
            if _held is not None and _blas_now != 1:  # left at workers() by run_shares_blas_threads
                _set_held_blas(1)
            together = self.parts > 1 and not _forked and workers() > 1
        except BaseException:
            _busy.release()
            raise
        self.locked = True
        return together

    def __exit__(self, *exc) -> bool:
        if self.locked:
            self.locked = False
            _busy.release()
        return False


def element_wise(serial_kernel, parallel_kernel, size: int, par_min: int, team_min: int, *args):
    """An element-wise kernel's call on ``size`` elements: its parallel build (a ``prange`` over
    planes or channels) where parallel mode asks for it (``size >= par_min``, see
    ``set_parallel``) or, from ``team_min`` elements, where ``numba_team`` lets a kernel use
    Numba's threads now; else the serial build. The two builds give the same bits."""
    if size >= par_min:
        return parallel_kernel(*args)
    if size < team_min:  # most calls: no lock to take
        return serial_kernel(*args)
    with numba_team(2) as together:
        return (parallel_kernel if together else serial_kernel)(*args)


def run_shares_blas_threads(fn, items):
    """run_split's shares, one after another in the calling thread, with BLAS at
    ``workers()`` threads: the cores work together inside each product instead of on
    different shares. The same shares in the same order, so the same sums; a product
    itself may round differently with another thread count (OpenBLAS's float64 products
    of some shapes do), so which of the two ways runs is a fixed rule, never a timing
    (``split_chooser.py``). Faster than ``run_split`` where a layer's shares are a few
    small products (batch 4): on a 2-vCPU VM two single-threaded products at once each
    ran at 0.6x the speed of one alone (benchmarks/notes/cpu-kernels.md, "Two ways to use
    the second core"). im2col and col2im run on one core here.

    While BLAS is held (the numba backend), it is left at ``workers()`` threads after the
    call (see the module doc); otherwise it is raised for the call and put back. Called
    from inside a share, or while another thread holds the helpers, it runs the shares
    with BLAS as it is (several Python threads running convolutions at once may then
    share BLAS's raised count); with Numba's parallel kernels on, it is ``run_split``."""
    items = list(items)
    if _numba_parallel_on():  # Numba's kernels use the cores themselves: BLAS stays at one
        return run_split(fn, items)
    shares = _shares(items)
    if getattr(_local, "inside", False) or not _busy.acquire(blocking=False):
        return [fn(share) for share in shares]
    try:
        if _held is not None:
            if _blas_now != workers():
                _set_held_blas(workers())
            context = contextlib.nullcontext()
        else:
            context = _blas_at(workers())
        with context:
            _local.inside = True
            try:
                return [fn(share) for share in shares]
            finally:
                _local.inside = False
    finally:
        _busy.release()


def _libs():
    global _blas_libs
    if _blas_libs is None:
        from threadpoolctl import ThreadpoolController

        _blas_libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libs


def _set_blas(n: int) -> None:
    """Every BLAS library at ``n`` threads (a ctypes call each, about 1 us; threadpoolctl's
    own ``limit`` re-scans the loaded libraries)."""
    for lib in _libs():
        lib.set_num_threads(n)


def _set_held_blas(n: int) -> None:
    global _blas_now
    _set_blas(n)
    _blas_now = n


@contextlib.contextmanager
def _blas_at(n: int):
    """BLAS at ``n`` threads inside the block, back to what it was after."""
    before = [lib.get_num_threads() for lib in _libs()]
    _set_blas(n)
    try:
        yield
    finally:
        for lib, k in zip(_libs(), before):
            lib.set_num_threads(k)


def _run_here(fn, share):
    """Share 0, in the calling thread: (ok, result or exception), like a helper's."""
    _local.inside = True
    try:
        return True, fn(share)
    except BaseException as e:
        return False, e
    finally:
        _local.inside = False
