"""``DataLoader``: reproducible shuffled mini-batches as backend arrays.

Each batch is ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` (or whatever shape the
samples have), ``y`` int64 ``(B,)``, both arrays of the active backend
(``numpy`` for numpy/numba, ``cupy`` -> on the GPU). ``B = batch_size``
except for the last batch of an epoch, which is smaller (or dropped with
``drop_last=True``).

Per batch: rows are gathered from the host arrays (``uint8`` stays ``uint8``),
``transform`` runs on the host batch, then the batch goes to the backend;
integer images are scaled to ``[0, 1]`` float32 at the end (on the device for
CuPy, so only bytes cross the bus) unless the transform already made floats.

Reproducibility: the order of epoch ``e`` and the random numbers each batch's
transform gets depend only on ``(seed, e, batch index)``. Iterating the
loader runs epoch ``loader.epoch`` and then advances it; ``start_epoch=`` or
:meth:`set_epoch` resumes a run at a given epoch, and
:meth:`iter_epoch(e, start_batch=k) <iter_epoch>` even in the middle of one.
With ``seed=None`` the seed is drawn once from :func:`minicnn.manual_seed`'s
generator, so ``manual_seed`` controls it.

Overlap: with the CuPy backend a background thread prepares the next
``prefetch`` batches (gather, transform, host->device copy on its own CUDA
stream) while the model computes on the current one. The stream is a
blocking stream, so it is ordered after work already queued on the legacy
default stream and device memory freed by the consumer is never overwritten
early. The NumPy path runs inline (no thread) unless ``prefetch`` is set.
"""

from __future__ import annotations

import math
import queue
import threading

import numpy as np

from minicnn import backend as _backend
from minicnn.data.transforms import apply_transform, to_float

_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _unpack(data):
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise TypeError(f"DataLoader: expected (images, labels), got a sequence of length {len(data)}")
        return data[0], data[1]
    if hasattr(data, "images") and hasattr(data, "labels"):
        return data.images, data.labels
    raise TypeError(
        f"DataLoader: expected a dataset (with .images and .labels) or an (images, labels) pair, "
        f"got {type(data).__name__}"
    )


class DataLoader:
    """Iterate ``(x, y)`` mini-batches of ``data`` on the active backend.

    ``data``: an :class:`~minicnn.data.dataset.ArrayDataset` (or anything with
    ``.images``/``.labels``) or an ``(images, labels)`` pair of host arrays,
    images ``(N, ...)`` (``uint8`` or float), labels ``(N,)`` integers.
    ``transform``: a batch transform (``Compose([...])``) or a plain callable
    ``f(x) -> x``. ``backend``: a backend name or None for the active one at
    iteration time. ``prefetch``: how many batches a background thread
    prepares ahead (default 2 for CuPy, 0 -- inline -- otherwise).
    """

    def __init__(self, data, batch_size: int = 64, shuffle: bool = False, seed: int | None = None,
                 drop_last: bool = False, transform=None, *, start_epoch: int = 0,
                 backend: str | None = None, prefetch: int | None = None, dtype=np.float32):
        x, y = _unpack(data)
        x = _backend.to_numpy(x)
        y = _backend.to_numpy(y)
        if x.ndim < 1 or len(x) != len(y):
            raise ValueError(f"DataLoader: {len(x)} images but {len(y)} labels; the counts must match")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError(f"DataLoader: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform {transform!r} is not callable")
        if seed is None:
            from minicnn.random import default_generator

            seed = int(default_generator().integers(2**63))
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative integer, got {seed!r}")
        self.dataset = data
        self.images = x
        self.labels = y.astype(np.int64, copy=False)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.backend = backend
        self.prefetch = prefetch
        self.dtype = np.dtype(dtype).type
        self.epoch = int(start_epoch)

    # -- sizes and order --------------------------------------------------
    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        """Batches per epoch."""
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter(loader)`` runs (to resume a run)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices ``int64 (N,)`` in epoch ``epoch``'s order."""
        n = self.num_samples
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(int(epoch), 0)))
        return rng.permutation(n)

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator the transform gets for batch ``batch`` of epoch ``epoch``."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(int(epoch), 1, int(batch))))

    # -- iteration --------------------------------------------------------
    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self.iter_epoch(epoch)

    def iter_epoch(self, epoch: int, start_batch: int = 0):
        """Batches of epoch ``epoch`` from batch ``start_batch`` on (does not change ``self.epoch``)."""
        be = _backend.get(self.backend)
        depth = self.prefetch if self.prefetch is not None else (2 if be.is_gpu else 0)
        host = self._host_batches(int(epoch), int(start_batch))
        if depth <= 0:
            return (self._to_backend(xb, yb, be) for xb, yb in host)
        return self._prefetched(host, be, int(depth))

    def _host_batches(self, epoch: int, start_batch: int):
        order = self.order(epoch) if self.shuffle else None
        n, b = self.num_samples, self.batch_size
        for k in range(start_batch, len(self)):
            lo, hi = k * b, min((k + 1) * b, n)
            if order is None:
                xb, yb = self.images[lo:hi], self.labels[lo:hi]
            else:
                idx = order[lo:hi]
                xb, yb = self.images[idx], self.labels[idx]
            if self.transform is not None:
                xb = apply_transform(self.transform, xb, self.batch_rng(epoch, k))
            yield xb, yb

    def _to_backend(self, xb, yb, be):
        xb = be.asarray(xb)
        if xb.dtype.kind in "ui":
            xb = to_float(xb, self.dtype)
        else:
            xb = xb.astype(self.dtype, copy=False)
            if be.xp is np and np.may_share_memory(xb, self.images):
                xb = xb.copy()  # never hand out a view the model could modify
        return xb, be.asarray(yb)

    def _prefetched(self, host, be, depth: int):
        q: queue.Queue = queue.Queue(maxsize=depth)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            for xb, yb in host:
                if stop.is_set():
                    return
                if not put(self._to_backend(xb, yb, be)):
                    return
            put(_END)

        def worker():
            try:
                if be.is_gpu:
                    import cupy

                    with cupy.cuda.Device(device_id):
                        stream = cupy.cuda.Stream(non_blocking=False)
                        with stream:
                            for xb, yb in host:
                                if stop.is_set():
                                    return
                                item = self._to_backend(xb, yb, be)
                                stream.synchronize()
                                if not put(item):
                                    return
                        put(_END)
                else:
                    produce()
            except BaseException as e:  # handed to the consumer
                put(_Failure(e))

        device_id = None
        if be.is_gpu:
            import cupy

            device_id = cupy.cuda.Device().id
        thread = threading.Thread(target=worker, name="minicnn-prefetch", daemon=True)

        def consume():
            thread.start()
            try:
                while True:
                    item = q.get()
                    if item is _END:
                        return
                    if isinstance(item, _Failure):
                        raise item.exc
                    yield item
            finally:
                stop.set()
                while True:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        break
                thread.join(timeout=5)

        return consume()
