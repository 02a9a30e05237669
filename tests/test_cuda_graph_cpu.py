"""minicnn.cuda_graph without a GPU: the eager path, its reasons, and which modules block a recording."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.cuda_graph import GraphedTrainStep, cuda_graph_blockers
from minicnn.models import MNISTNet, TutorialNet
from minicnn.train import Classification


@pytest.fixture(autouse=True)
def _numpy_backend():
    mc.set_backend("numpy")
    yield
    mc.set_backend("numpy")


def test_cpu_backend_runs_the_step_eagerly_and_sets_fresh_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    mc.manual_seed(0)
    a = TutorialNet()
    mc.manual_seed(0)
    b = TutorialNet()
    step = GraphedTrainStep(a, Classification())
    obj = Classification()
    for _ in range(2):  # twice: gradients are set, not accumulated
        loss, logits, parts = step(x, y)
    ref_loss, ref_logits, _ = obj.forward(b, x, y)
    obj.backward(b)
    assert step.mode == "eager" and "not a GPU backend" in step.reason and step.replays == 0
    assert float(loss) == float(ref_loss) and parts == {}
    np.testing.assert_array_equal(logits, ref_logits)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.grad, pb.grad)


def test_blockers_name_dropout_and_cumulative_batchnorm_in_training_only():
    net = MNISTNet()
    found = cuda_graph_blockers(net.train())
    assert [f.split(" ")[0] for f in found] == ["conv2_drop", "drop"]
    assert "random mask" in found[0]
    assert cuda_graph_blockers(net.eval()) == []
    # BatchNorm updates its running statistics in place: a replay updates them too
    assert cuda_graph_blockers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()) == []
    bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=None))  # factor 1/t read on the host
    found = cuda_graph_blockers(bn.train())
    assert len(found) == 1 and "BatchNorm2d" in found[0] and "momentum=None" in found[0]
    assert cuda_graph_blockers(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))) == []
    assert cuda_graph_blockers(nn.Sequential(nn.Dropout(0.0), nn.Dropout(1.0))) == []
    assert cuda_graph_blockers(TutorialNet()) == []


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="warmup must be >= 1"):
        GraphedTrainStep(TutorialNet(), Classification(), warmup=0)
    with pytest.raises(ValueError, match="refresh_after must be >= 1"):
        GraphedTrainStep(TutorialNet(), Classification(), refresh_after=0)


def test_disabled_step_says_so():
    step = GraphedTrainStep(TutorialNet(), Classification(), enabled=False)
    step(np.zeros((2, 3, 32, 32), np.float32), np.zeros(2, np.int64))
    assert step.reason == "disabled"


class _FakeGPU:
    """The numpy backend posing as a GPU one, so that GraphedTrainStep's bookkeeping
    runs on the CPU; recording and replaying are stubbed (they need CUDA)."""

    name, is_gpu = "fake-gpu", True

    def __init__(self, real):
        self._real = real

    def __getattr__(self, k):
        return getattr(self._real, k)


def _stubbed_step(monkeypatch, model, fail=False, **kw):
    import minicnn.cuda_graph as cg

    fake = _FakeGPU(cg.backend.current())
    monkeypatch.setattr(cg.backend, "current", lambda: fake)
    step = GraphedTrainStep(model, Classification(), **kw)
    log = []

    def capture(be, x, y, sig):
        if fail:
            raise RuntimeError("cannot record this")
        step._graph, step._sig = object(), sig
        step._grads = [(p, p.grad) for p in step.params]
        step._pending = (None, 0)
        step.captures += 1
        log.append("capture")

    def replay(x, y):
        step.replays += 1
        step.reason = None
        step._pending = (None, 0)
        log.append("replay")
        return None, None, {}

    monkeypatch.setattr(step, "_capture", capture)
    monkeypatch.setattr(step, "_replay", replay)
    monkeypatch.setattr(step, "close", lambda: setattr(step, "_graph", None))
    return step, log


def _xy(n=4):
    return np.zeros((n, 3, 32, 32), np.float32), np.zeros(n, np.int64)


def test_state_machine_warmup_replay_short_batch_and_refresh(monkeypatch):
    net = TutorialNet()
    step, log = _stubbed_step(monkeypatch, net, refresh_after=2)
    step(*_xy())
    step(*_xy())
    assert log == [] and step.reason == "warm-up call 2 of 2"
    step(*_xy())
    step(*_xy())
    assert log == ["capture", "replay", "replay"]
    step(*_xy(2))  # a short batch: eager, the recording stays
    assert log[-1] == "replay" and "batch shape" in step.reason
    step(*_xy())
    assert log[-1] == "replay" and step.captures == 1
    net.fc1.weight.requires_grad = False  # a flag change: eager for refresh_after calls, then re-record
    step(*_xy())
    step(*_xy())
    assert step.captures == 1 and "flag" in step.reason
    step(*_xy())
    assert step.captures == 2 and log[-2:] == ["capture", "replay"]
    net.fc1.weight.requires_grad = True  # back to the recorded flags: replays again
    for _ in range(3):
        step(*_xy())
    assert step.captures == 3 and step.reason is None
    net.fc2.weight.data = net.fc2.weight.data.copy()  # only an address changes
    step(*_xy())
    assert step.captures == 3 and "parameter array" in step.reason
    for _ in range(2):
        step(*_xy())
    assert step.captures == 4 and step.reason is None
    net.requires_input_grad_(False)  # only needs_input_grad changes (a fresh model computes it)
    step(*_xy())
    assert step.captures == 4 and "needs_input_grad" in step.reason and log[-1] == "replay"


def test_state_machine_failed_recording_warns_and_stays_eager(monkeypatch):
    step, log = _stubbed_step(monkeypatch, TutorialNet(), fail=True, warmup=1)
    step(*_xy())
    with pytest.warns(RuntimeWarning, match="cannot record this"):
        step(*_xy())
    step(*_xy())
    assert log == [] and step.mode == "eager" and "recording failed" in step.reason


def test_state_machine_blocked_by_dropout_and_by_the_objective(monkeypatch):
    step, log = _stubbed_step(monkeypatch, MNISTNet())
    monkeypatch.setattr(step, "_eager", lambda x, y, why: setattr(step, "reason", why))  # dropout needs CuPy here
    for _ in range(4):
        step(np.zeros((4, 1, 28, 28), np.float32), np.zeros(4, np.int64))
    assert log == [] and "Dropout" in step.reason

    class Noisy(Classification):
        def cuda_graph_blocker(self):
            return "draws noise on the host"

    assert cuda_graph_blockers(TutorialNet(), Noisy()) == ["objective (Noisy): draws noise on the host"]
    step, log = _stubbed_step(monkeypatch, TutorialNet())
    step.objective = Noisy()
    for _ in range(4):
        step(*_xy())
    assert log == [] and "objective (Noisy)" in step.reason


@pytest.mark.parametrize("gpu", [False, True], ids=["plain-step", "graphed-step"])
def test_trainer_sets_gradients_of_optimiser_parameters_outside_the_model(tmp_path, monkeypatch, gpu):
    from minicnn import data
    from minicnn.nn import Parameter
    from minicnn.train import TrainConfig, Trainer

    class Scaled(Classification):  # an objective with a learnable temperature of its own
        def __init__(self):
            super().__init__()
            self.t = Parameter(np.ones((1, 1), np.float32))

        def forward(self, model, x, y):
            logits = model(x)
            self._logits = logits
            return self.ce(logits * self.t.data, y), logits, {}

        def backward(self, model):
            d = self.ce.backward()
            self.t.accumulate((d * self._logits).sum().reshape(1, 1))
            model.backward(d * self.t.data)

    rng = np.random.default_rng(0)
    half_x, half_y = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 4)
    ds = data.ArrayDataset(np.concatenate([half_x, half_x]), np.concatenate([half_y, half_y]),
                           classes=[str(i) for i in range(10)])  # two identical batches
    obj, net = Scaled(), TutorialNet()
    opt = mc.optim.SGD([*net.parameters(), obj.t], lr=0.0)  # nothing moves: both steps see one gradient
    seen = []
    if gpu:  # the Trainer then steps through a GraphedTrainStep (both steps are its eager warm-up calls)
        fake = _FakeGPU(mc.backend.current())
        monkeypatch.setattr(mc.backend, "current", lambda: fake)
    loader = data.DataLoader(ds, 4, transform=data.ToFloat(), prefetch=0)  # no CuPy prefetch for the fake GPU
    tr = Trainer(net, opt, obj, loader, num_classes=10, out_dir=tmp_path, config=TrainConfig(epochs=1, progress=False),
                 log=lambda s: None, callbacks=[lambda t: seen.append(float(obj.t.grad[0, 0]))])
    if gpu:
        assert any(p is obj.t for p in tr.graphed_step.params)
    else:
        assert tr.graphed_step is None  # CPU: the step runs in plain sight in Trainer.train_step
    tr.fit()
    if gpu:
        assert tr.graphed_step.reason == "warm-up call 2 of 2"
    # set, not accumulated: the second step's gradient equals the first (accumulating would double it)
    assert len(seen) == 2 and seen[0] != 0.0 and seen[1] == seen[0]


def test_batchnorm_updates_its_running_statistics_in_place():
    """What lets a replay update them: the buffer arrays stay the same objects, with PyTorch's values."""
    bn = nn.BatchNorm2d(3).train()
    bufs = {k: bn._buffers[k] for k in ("running_mean", "running_var", "num_batches_tracked")}
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    for _ in range(2):
        bn(mc.asarray(x))
    assert all(bn._buffers[k] is v for k, v in bufs.items())
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bufs["running_mean"], (1 - 0.9 ** 2) * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bufs["running_var"], 0.9 ** 2 + (1 - 0.9 ** 2) * var, rtol=1e-5)
    assert int(bufs["num_batches_tracked"]) == 2


def test_retired_private_pools_live_while_any_of_their_arrays_does():
    """A recording's private memory pool outlives close() while an array allocated from it
    is still alive (a CuPy pool frees its device memory when collected), and is dropped,
    with every other unused retired pool, at the next retirement after that array is gone."""
    from minicnn import cuda_graph

    class Pool:
        def __init__(self, used):
            self.used = used

        def used_bytes(self):
            return self.used

    saved = list(cuda_graph._RETIRED_POOLS)
    cuda_graph._RETIRED_POOLS.clear()
    try:
        busy, idle = Pool(512), Pool(0)
        cuda_graph._release_pool(busy)
        cuda_graph._release_pool(idle)
        assert cuda_graph._RETIRED_POOLS == [busy]  # an unused pool goes at once
        busy.used = 0  # its last array was freed
        cuda_graph._release_pool(None)  # close() without a recording still prunes
        assert cuda_graph._RETIRED_POOLS == []
    finally:
        cuda_graph._RETIRED_POOLS[:] = saved


def test_eval_step_runs_the_forward_alone_and_touches_no_gradient():
    from minicnn.cuda_graph import GraphedEvalStep

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    net = TutorialNet().eval()
    sentinel = np.full(net.fc3.bias.data.shape, 7.0, np.float32)
    net.fc3.bias.grad = sentinel
    step = GraphedEvalStep(net, Classification())
    loss, logits, _ = step(x, y)
    want_loss, want_logits, _ = Classification().forward(net, x, y)
    assert float(loss) == float(want_loss) and np.array_equal(logits, want_logits)
    assert net.fc3.bias.grad is sentinel and "not a GPU backend" in step.reason
    assert step.params == []


def test_evaluate_runs_each_batch_through_the_given_step():
    from minicnn import data
    from minicnn.train import evaluate

    rng = np.random.default_rng(1)
    ds = data.ArrayDataset(rng.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 10),
                           classes=[str(i) for i in range(10)])
    loader = data.DataLoader(ds, 4, transform=data.ToFloat(), prefetch=0)
    net, obj = TutorialNet(), Classification()
    calls = []

    def step(x, y):
        calls.append(len(y))
        return obj.forward(net, x, y)

    plain = evaluate(net, obj, loader, 10)
    stepped = evaluate(net, obj, loader, 10, step=step)
    assert calls == [4, 4, 2] and stepped == plain


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "fake-gpu"])
def test_trainer_evaluates_through_a_graphed_eval_step_on_a_gpu_backend(tmp_path, monkeypatch, gpu):
    from minicnn import data
    from minicnn.cuda_graph import GraphedEvalStep
    from minicnn.train import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    ds = data.ArrayDataset(rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 8),
                           classes=[str(i) for i in range(10)])
    if gpu:
        fake = _FakeGPU(mc.backend.current())
        monkeypatch.setattr(mc.backend, "current", lambda: fake)
    loader = data.DataLoader(ds, 4, transform=data.ToFloat(), prefetch=0)
    net = TutorialNet()
    tr = Trainer(net, mc.optim.SGD(net.parameters(), lr=0.01), Classification(), loader, loader, num_classes=10,
                 out_dir=tmp_path, config=TrainConfig(epochs=1, progress=False), log=lambda s: None)
    if not gpu:
        assert tr.graphed_eval is None
        return
    assert isinstance(tr.graphed_eval, GraphedEvalStep)
    with pytest.warns(RuntimeWarning, match="GraphedEvalStep: recording the evaluation's forward pass"):
        tr.fit()  # batch 1: the eager warm-up call; batch 2: recording (impossible on the fake GPU) fails
    assert tr.graphed_eval.reason.startswith("recording failed")
