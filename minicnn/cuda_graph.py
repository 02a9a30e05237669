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
* Recorded: ``objective.forward(model, x, y)``, setting the gradient of every
  parameter in ``params`` (default: the model's) to None
  (``zero_grad(set_to_none=True)``) and ``objective.backward(model)``. So
  after a call each ``p.grad`` holds this step's gradient alone; gradients
  are not accumulated across calls.
* Not recorded: the optimiser step (it stays eager, so learning-rate changes,
  Adam's step count and SGD's first-step momentum behave as always) and the
  copy of the batch into the graph's fixed input buffers.
* Fixed at recording: every Python-side scalar the step uses (the loss
  weight ``lam``, activation slopes, reductions). Changing one later has no
  effect on replays; ``close()`` and make a new step instead.
* Outputs are *static*, as with PyTorch's CUDA graphs: ``loss``, ``logits``,
  the ``parts`` and the ``p.grad`` arrays are the same arrays every step and
  are overwritten by the next call. Read or copy them before calling again.

When the step runs eagerly instead (same results, no graph)
-----------------------------------------------------------
* The backend is not a GPU backend, or ``enabled=False``.
* The first ``warmup`` calls (kernels compile and the memory pool fills).
* A module or the objective reports a reason in ``cuda_graph_blocker()``:
  Dropout in training draws a new mask every step, and BatchNorm with
  ``momentum=None`` reads its averaging factor on the host; a replay would
  repeat the recorded ones. (BatchNorm with a momentum updates its running
  statistics in place, so a replay updates them as an eager step does.)
* A batch whose shape or dtype differs from the recorded one (the last, short
  batch of an epoch), a changed ``training``, ``requires_grad`` or
  ``needs_input_grad`` flag, or a parameter or buffer whose array was
  replaced (the graph reads fixed addresses). After ``refresh_after``
  consecutive calls with one new signature (after loading a checkpoint, say)
  the step is recorded again.
* Recording failed (an operation that cannot be captured, such as a
  device-to-host copy): a warning names the error and the step stays eager.

Memory: the recording allocates from a memory pool of its own (PyTorch's
graph-private pool), so no array outside the graph can ever be given an
address the graph writes to. Inside the recording a temporary freed by one
layer is reused by a later one, as in an eager step: every kernel runs on one
stream in recorded order, so each replay reuses it in the same order. The
private pool thus holds about one eager step's peak; the eager warm-up's
blocks stay in CuPy's ordinary pool for the eager work around the replays.
``close()`` detaches the static gradients from the parameters; the private
pool is dropped once none of its arrays is alive any more.

Matrix products: CuPy refuses cuBLAS calls while a stream is capturing, so the
``cupy`` backend's ``matmul`` calls cuBLAS itself (``minicnn.kernels.cuda.gemm``),
eagerly too, so that replays and eager steps compute the same bits.
"""

from __future__ import annotations

import warnings

from minicnn import backend
from minicnn.kernels.cuda import array_address


def cuda_graph_blockers(model, objective=None) -> list[str]:
    """Why ``model``'s training step (with ``objective``) cannot be replayed from a
    recording, as ``"name (Type): reason"`` strings; empty when it can."""
    out = []
    for name, m in model.named_modules():
        why = m.cuda_graph_blocker()
        if why:
            out.append(f"{name or type(m).__name__} ({type(m).__name__}): {why}")
    check = getattr(objective, "cuda_graph_blocker", None)
    why = check() if callable(check) else None
    if why:
        out.append(f"objective ({type(objective).__name__}): {why}")
    return out


#: Graph-private pools that may still back live arrays (a static output or cache a caller
#: kept after ``close()``). A CuPy pool frees its device memory when it is collected, so a
#: pool stays here until nothing allocated from it is in use (see ``_release_pool``).
_RETIRED_POOLS: list = []


def _release_pool(pool) -> None:
    """Retire a recording's private pool: drop it, and every retired pool, once unused."""
    if pool is not None:
        _RETIRED_POOLS.append(pool)
    _RETIRED_POOLS[:] = [p for p in _RETIRED_POOLS if p.used_bytes() > 0]


class GraphedTrainStep:
    """``step(x, y) -> (loss, logits, parts)``: forward, loss and backward of
    ``objective`` on ``model``, replayed from a CUDA graph where possible (see
    the module docstring for when it is not). ``x``: the input batch (N, C, H,
    W), ``y``: labels (N,); numpy or device arrays. ``params``: the parameters
    whose gradients a step sets (default ``model.parameters()``; pass the
    optimiser's too when the objective has parameters of its own).

    ``mode`` is ``"graph"`` once a recording exists, else ``"eager"``;
    ``reason`` says why the last call ran eagerly (None after a replay).
    """

    _what = "the training step"

    def __init__(self, model, objective, *, params=None, warmup: int = 2, enabled: bool = True,
                 refresh_after: int = 3):
        if warmup < 1:
            raise ValueError(f"GraphedTrainStep: warmup must be >= 1 (kernels compile on first use), got {warmup}")
        if refresh_after < 1:
            raise ValueError(f"GraphedTrainStep: refresh_after must be >= 1, got {refresh_after}")
        self.model, self.objective = model, objective
        self.params = list(model.parameters()) if params is None else list(dict.fromkeys(params))
        self.warmup, self.enabled, self.refresh_after = int(warmup), bool(enabled), int(refresh_after)
        self.replays = 0          # calls served by the graph
        self.captures = 0         # recordings made
        self.reason: str | None = "no call yet"
        self._calls = 0
        self._failed: str | None = None
        self._graph = None
        self._stream = self._replay_stream = None
        self._grads: list = []
        self._outs = self._sig = self._x = self._y = self._pool = None
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
                return self._eager(x, y, "batch shape, a flag (training / requires_grad / needs_input_grad) "
                                         "or a parameter array differs from the recording")
        try:
            self._capture(be, x, y, sig)
        except Exception as e:  # noqa: BLE001 -- any capture failure means: run eagerly from now on
            self.close()
            self._failed = f"{type(e).__name__}: {e}"
            warnings.warn(f"{type(self).__name__}: recording {self._what} as a CUDA graph failed "
                          f"({self._failed}); running it eagerly from now on", RuntimeWarning, stacklevel=2)
            return self._eager(x, y, f"recording failed: {self._failed}")
        return self._replay(x, y)

    def close(self) -> None:
        """Forget the recording: waits for the stream of the last replay (it may still be
        running), sets to None the gradients that are the recording's static arrays (so
        call it after ``optimizer.step()``), and drops the static outputs and the kept
        memory. After the warm-up calls, the next call records again (unless one of the
        eager conditions above holds)."""
        if self._graph is not None and self._replay_stream is not None:
            self._replay_stream.synchronize()
        self._replay_stream = None
        for p, g in self._grads:
            if g is not None and p.grad is g:
                p.grad = None
        self._graph = self._outs = self._sig = self._x = self._y = None
        self._grads = []
        pool, self._pool = self._pool, None
        _release_pool(pool)

    # -- pieces ---------------------------------------------------------------
    def _eager_reason(self, be) -> str | None:
        if not self.enabled:
            return "disabled"
        if not be.is_gpu:
            return f"backend {be.name!r} is not a GPU backend"
        if self._failed:
            return f"recording failed: {self._failed}"
        blockers = cuda_graph_blockers(self.model, self.objective)
        if blockers:
            return "; ".join(blockers)
        self._calls += 1
        if self._graph is None and self._calls <= self.warmup:
            return f"warm-up call {self._calls} of {self.warmup}"
        return None

    def _signature(self, x, y) -> tuple:
        mods = list(self.model.modules())
        return (tuple(x.shape), str(x.dtype), tuple(y.shape), str(y.dtype),
                tuple((m.training, m.needs_input_grad) for m in mods),
                tuple(p.requires_grad for p in self.params),
                tuple(array_address(a) for a in self._arrays(mods)))

    def _arrays(self, mods):
        """Every parameter and buffer array the recording may read (by address), each once."""
        seen = set()
        for p in (*self.params, *(q for m in mods for q in m._parameters.values())):
            if id(p) not in seen:
                seen.add(id(p))
                yield p.data
        for m in mods:
            for b in m._buffers.values():
                if b is not None and hasattr(b, "shape"):
                    yield b

    def _body(self, x, y):
        """What is recorded: forward, gradients set to None, backward; returns (loss, logits, parts)."""
        outs = self.objective.forward(self.model, x, y)
        for p in self.params:
            p.grad = None
        self.objective.backward(self.model)
        return outs

    def _eager(self, x, y, why: str):
        self.reason = why
        xp = backend.current().xp
        x, y = xp.asarray(x), xp.asarray(y)
        return self._body(x, y)

    def _capture(self, be, x, y, sig) -> None:
        cp = be.xp
        self.close()
        from minicnn.kernels.cuda import gemm

        gemm.prepare()  # the cuBLAS handle and workspace, created outside the recording
        # Fixed input buffers, from the ordinary pool: written before each replay.
        self._x = cp.empty(tuple(x.shape), dtype=x.dtype)
        self._y = cp.empty(tuple(y.shape), dtype=y.dtype)
        if self._stream is None:
            self._stream = cp.cuda.Stream(non_blocking=True)
        self._stream.wait_event(cp.cuda.get_current_stream().record())
        pool = cp.cuda.MemoryPool()  # the recording's own: see "Memory" in the module doc
        self._pool = pool  # set first, so close() retires it if the recording fails
        with cp.cuda.using_allocator(pool.malloc), self._stream:
            self._stream.begin_capture()
            try:
                outs = self._body(self._x, self._y)
            except BaseException:
                try:  # end the broken capture so the stream is usable again; the first error is the one to report
                    self._stream.end_capture()
                except Exception:  # noqa: BLE001
                    pass
                raise
            graph = self._stream.end_capture()
        self._graph, self._outs, self._sig = graph, outs, sig
        self._grads = [(p, p.grad) for p in self.params]
        self._pending = (None, 0)
        self.captures += 1

    def _replay(self, x, y):
        cp = backend.current().xp
        self._x[...] = cp.asarray(x)
        self._y[...] = cp.asarray(y)
        self._replay_stream = cp.cuda.get_current_stream()
        self._graph.launch(stream=self._replay_stream)
        for p, g in self._grads:
            p.grad = g
        self.replays += 1
        self.reason = None
        self._pending = (None, 0)
        return self._outs


class GraphedEvalStep(GraphedTrainStep):
    """``step(x, y) -> (loss, logits, parts)``: the objective's forward alone (no backward,
    no gradient touched), replayed from a CUDA graph -- what :func:`minicnn.train.evaluate`
    runs per batch on a GPU backend. Call it with the model in eval mode (``evaluate`` does).

    The rules of :class:`GraphedTrainStep` hold: ``warmup`` eager calls first (default 1),
    eager for a batch of another shape (the last, short one), a changed flag or a replaced
    parameter or buffer array, re-recorded after ``refresh_after`` calls with a new
    signature, eager for good if recording fails. The outputs are static: read them (the
    loss as a float, the logits' argmax) before the next call. The recording's private
    pool holds about one eager forward's peak for the batch size it was made for.
    """

    _what = "the evaluation's forward pass"

    def __init__(self, model, objective, *, warmup: int = 1, enabled: bool = True, refresh_after: int = 3):
        super().__init__(model, objective, params=[], warmup=warmup, enabled=enabled, refresh_after=refresh_after)

    def _body(self, x, y):
        """What is recorded: the forward pass and the loss."""
        return self.objective.forward(self.model, x, y)

