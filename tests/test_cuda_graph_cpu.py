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


def test_blockers_name_dropout_and_batchnorm_in_training_only():
    net = MNISTNet()
    found = cuda_graph_blockers(net.train())
    assert [f.split(" ")[0] for f in found] == ["conv2_drop", "drop"]
    assert "random mask" in found[0]
    assert cuda_graph_blockers(net.eval()) == []
    bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    found = cuda_graph_blockers(bn.train())
    assert len(found) == 1 and "BatchNorm2d" in found[0] and "running statistics" in found[0]
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
