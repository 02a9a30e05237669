"""One training step's forward + loss + backward as a CUDA graph (``cupy`` backend).

A small net's training step on a GPU is a few hundred short kernels; launching
them one by one from Python costs more than running them. ``GraphedTrainStep``
records the step once with CUDA stream capture and afterwards replays the
whole recording with one ``cudaGraphLaunch`` per step::

    step = GraphedTrainStep(model, objective)      # objective: minicnn.train.Objective
    for x, y in loader:
        loss, logits, parts = step(x, y)           # forward, loss, backward: fills every p.grad
        optimizer.step()                           # eager: one fused launch per parameter group

What is recorded and what is not
--------------------------------
* Recorded: ``objective.forward(model, x, y)``, setting every parameter's
  ``grad`` to None (``zero_grad(set_to_none=True)``) and
  ``objective.backward(model)``. So after a call each ``p.grad`` holds this
  step's gradient alone; gradients are not accumulated across calls.
* Not recorded: the optimiser step (it stays eager, so learning-rate changes,
  Adam's step count and SGD's first-step momentum behave as always) and the
  copy of the batch into the graph's fixed input buffers.
* Outputs are *static*, as with PyTorch's CUDA graphs: ``loss``, ``logits``,
  the ``parts`` and the ``p.grad`` arrays are the same arrays every step and
  are overwritten by the next call. Read or copy them before calling again.

When the step runs eagerly instead (same results, no graph)
-----------------------------------------------------------
* The backend is not a GPU backend, or ``enabled=False``.
* The first ``warmup`` calls (kernels compile and the memory pool fills).
* A module reports a reason in ``cuda_graph_blocker()``: Dropout in training
  draws a new mask every step, BatchNorm in training rebinds its running
  statistics; a replay would repeat the recorded mask / statistics.
* A batch whose shape or dtype differs from the recorded one (the last, short
  batch of an epoch), a module whose ``training`` flag changed, or a
  parameter whose array was replaced (``load_state_dict`` assigns new
  arrays): the graph reads fixed addresses, so these calls run eagerly.
  After ``refresh_after`` consecutive such calls with one new signature
  (for example after loading a checkpoint) the step is recorded again.
* Recording failed (an operation that cannot be captured, such as a
  device-to-host copy): a warning names the error and the step stays eager.

Matrix products: CuPy refuses cuBLAS calls while a stream is capturing, so
while recording the backend's ``matmul`` calls cuBLAS itself (see
``minicnn.kernels.cuda.gemm``). Replays therefore use a different cuBLAS
entry point than eager steps, and the two can differ in the last bits of
float32 (algorithm choice); replays are bitwise repeatable among themselves.

Memory: everything the recording allocates comes from a private CuPy memory
pool that lives as long as this object, so no other array can be given an
address the graph writes to.
"""

from __future__ import annotations

import warnings

from minicnn import backend


def cuda_graph_blockers(model) -> list[str]:
    """Why ``model``'s training step cannot be replayed from a recording, as
    ``"name (Type): reason"`` strings; empty when it can."""
    out = []
    for name, m in model.named_modules():
        why = m.cuda_graph_blocker()
        if why:
            out.append(f"{name or type(m).__name__} ({type(m).__name__}): {why}")
    return out


class GraphedTrainStep:
    """``step(x, y) -> (loss, logits, parts)``: forward, loss and backward of
    ``objective`` on ``model``, replayed from a CUDA graph where possible (see
    the module docstring for when it is not). ``x``: the input batch (N, C, H,
    W), ``y``: labels (N,); numpy or device arrays.

    ``mode`` is ``"graph"`` once a recording exists, else ``"eager"``;
    ``reason`` says why the last call ran eagerly (None after a replay).
    """

    def __init__(self, model, objective, *, warmup: int = 2, enabled: bool = True, refresh_after: int = 3):
        if warmup < 1:
            raise ValueError(f"GraphedTrainStep: warmup must be >= 1 (kernels compile on first use), got {warmup}")
        if refresh_after < 1:
            raise ValueError(f"GraphedTrainStep: refresh_after must be >= 1, got {refresh_after}")
        self.model, self.objective = model, objective
        self.warmup, self.enabled, self.refresh_after = int(warmup), bool(enabled), int(refresh_after)
        self.replays = 0          # calls served by the graph
        self.captures = 0         # recordings made
        self.reason: str | None = "no call yet"
        self._calls = 0
        self._failed: str | None = None
        self._graph = None
        self._pending = (None, 0)  # (signature, consecutive eager calls with it)

    # -- public ---------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "graph" if self._graph is not None else "eager"

    def __call__(self, x, y):
        be = backend.current()
        why = self._eager_reason(be)
        if why is not None:
            return self._eager(x, y, why)
        sig = self._signature(x, y)
        if self._graph is not None and sig == self._sig:
            return self._replay(x, y)
        if self._graph is not None:
            last, n = self._pending
            n = n + 1 if sig == last else 1
            self._pending = (sig, n)
            if n <= self.refresh_after:
                return self._eager(x, y, "batch shape, training flags or parameter arrays differ from the recording")
        try:
            self._capture(be, x, y, sig)
        except Exception as e:  # noqa: BLE001 -- any capture failure means: run eagerly from now on
            self._drop()
            self._failed = f"{type(e).__name__}: {e}"
            warnings.warn(f"GraphedTrainStep: recording the training step as a CUDA graph failed "
                          f"({self._failed}); running it eagerly from now on", RuntimeWarning, stacklevel=2)
            return self._eager(x, y, f"recording failed: {self._failed}")
        return self._replay(x, y)

    # -- pieces ---------------------------------------------------------------
    def _eager_reason(self, be) -> str | None:
        if not self.enabled:
            return "disabled"
        if not be.is_gpu:
            return f"backend {be.name!r} is not a GPU backend"
        if self._failed:
            return f"recording failed: {self._failed}"
        blockers = cuda_graph_blockers(self.model)
        if blockers:
            return "; ".join(blockers)
        self._calls += 1
        if self._graph is None and self._calls <= self.warmup:
            return f"warm-up call {self._calls} of {self.warmup}"
        return None

    def _params(self):
        return list(self.model.parameters())

    def _signature(self, x, y) -> tuple:
        return (tuple(x.shape), str(x.dtype), tuple(y.shape), str(y.dtype),
                tuple(m.training for m in self.model.modules()),
                tuple(a.data.ptr for a in self._arrays()))

    def _arrays(self):
        """Every parameter and buffer array the recording may read (by address)."""
        for m in self.model.modules():
            for p in m._parameters.values():
                if p is not None:
                    yield p.data
            for b in m._buffers.values():
                if b is not None and hasattr(b, "data") and hasattr(b.data, "ptr"):
                    yield b

    def _eager(self, x, y, why: str):
        self.reason = why
        xp = backend.current().xp
        x, y = xp.asarray(x), xp.asarray(y)
        loss, logits, parts = self.objective.forward(self.model, x, y)
        for p in self._params():
            p.grad = None
        self.objective.backward(self.model)
        return loss, logits, parts

    def _capture(self, be, x, y, sig) -> None:
        cp = be.xp
        self._drop()
        params = self._params()
        from minicnn.kernels.cuda import gemm

        gemm.prepare()  # the cuBLAS handle and workspace that products use while recording
        # Fixed input buffers, from the ordinary pool: written before each replay.
        self._x = cp.empty(tuple(x.shape), dtype=x.dtype)
        self._y = cp.empty(tuple(y.shape), dtype=y.dtype)
        self._pool = cp.cuda.MemoryPool()
        self._stream = cp.cuda.Stream(non_blocking=True)
        self._stream.wait_event(cp.cuda.get_current_stream().record())
        with cp.cuda.using_allocator(self._pool.malloc), self._stream:
            self._stream.begin_capture()
            try:
                outs = self.objective.forward(self.model, self._x, self._y)
                for p in params:
                    p.grad = None
                self.objective.backward(self.model)
            except BaseException:
                try:  # end the broken capture so the stream is usable again; the first error is the one to report
                    self._stream.end_capture()
                except Exception:  # noqa: BLE001
                    pass
                raise
            graph = self._stream.end_capture()
        self._graph, self._outs, self._sig = graph, outs, sig
        self._grads = [(p, p.grad) for p in params]
        self._pending = (None, 0)
        self.captures += 1

    def _replay(self, x, y):
        cp = backend.current().xp
        self._x[...] = cp.asarray(x)
        self._y[...] = cp.asarray(y)
        self._graph.launch(stream=cp.cuda.get_current_stream())
        for p, g in self._grads:
            p.grad = g
        self.replays += 1
        self._pending = (None, 0)
        self.reason = None
        return self._outs

    def _drop(self) -> None:
        """Forget a recording (its arrays go back to its private pool, which goes with it).
        Waits for queued work first: a replay in flight may still write to that memory."""
        if self._graph is not None:
            backend.current().xp.cuda.get_current_stream().synchronize()
        self._graph = self._outs = self._sig = None
        self._grads = []
        self._x = self._y = None
        self._pool = self._stream = None
