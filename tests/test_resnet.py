"""The residual block and the CIFAR ResNets: finite-difference gradient checks
(float64), float64 PyTorch parity (block and whole ResNet-20: forward, input and
every parameter gradient, BatchNorm running statistics, three SGD steps with
momentum and weight decay), the numpy and numba backends agreeing, and the
module tree (state_dict keys of the PyTorch twin, parameter counts)."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import MODELS, ResNet, resnet20

from conftest import assert_close, assert_forward_and_input_grad_match, copy_to_torch, gradcheck

BLOCKS = [
    # (in, out, stride, shortcut): which shortcut the block ends up with
    (4, 4, 1, "A"),   # identity
    (4, 8, 2, "A"),   # option A: subsample + zero channels (2 before, 2 after)
    (3, 6, 1, "A"),   # option A without subsampling, an odd split (1 before, 2 after)
    (4, 8, 2, "B"),   # option B: 1x1 strided conv + BN
    (4, 6, 1, "B"),
]


def _block_input(c, seed=0, n=2, hw=6):
    return np.random.default_rng(seed).standard_normal((n, c, hw, hw))


# --- gradient checks ------------------------------------------------------------

@pytest.mark.usefixtures("cpu_backend", "float64")
@pytest.mark.parametrize("cin,cout,stride,shortcut", BLOCKS)
def test_basic_block_gradcheck(cin, cout, stride, shortcut):
    mc.manual_seed(1)
    block = nn.BasicBlock(cin, cout, stride, shortcut)
    gradcheck(block, [_block_input(cin, 2)])


@pytest.mark.usefixtures("cpu_backend", "float64")
def test_basic_block_gradcheck_eval_mode():
    mc.manual_seed(2)
    block = nn.BasicBlock(4, 8, 2, "B")
    block(mc.asarray(_block_input(4, 3)))  # running statistics that are not the identity
    block.eval()
    gradcheck(block, [_block_input(4, 4)])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_tiny_resnet_gradcheck(cpu_backend, shortcut):
    """ResNet-8 (one block per stage) on 8x8 images: every parameter, through both stride-2 stages."""
    mc.manual_seed(3)
    model = ResNet(8, num_classes=5, shortcut=shortcut)
    gradcheck(model, [np.random.default_rng(4).standard_normal((2, 3, 8, 8))], max_entries=8)


@pytest.mark.usefixtures("cpu_backend", "float64")
def test_zero_pad_shortcut_gradcheck():
    gradcheck(nn.ZeroPadShortcut(3, 8, 2), [_block_input(3, 5, hw=7)])


# --- PyTorch parity ---------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")


def _compare_grads_and_buffers(ours, theirs, what):
    tparams = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(tparams), f"{what}: parameter names differ"
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, f"{what} grad {name}")
    tbuf = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        assert_close(b, tbuf[name], f"{what} buffer {name}")


@pytest.mark.torch
@pytest.mark.usefixtures("cpu_backend", "float64")
@pytest.mark.parametrize("cin,cout,stride,shortcut", BLOCKS)
@pytest.mark.parametrize("training", [True, False])
def test_basic_block_matches_torch(cin, cout, stride, shortcut, training):
    _torch()
    from benchmarks.torch_models import TorchBasicBlock

    mc.manual_seed(4)
    ours = nn.BasicBlock(cin, cout, stride, shortcut)
    rng = np.random.default_rng(5)
    for m in ours.modules():  # running statistics away from (0, 1), so that eval mode tests them
        if isinstance(m, nn.BatchNorm2d):
            m.register_buffer("running_mean", mc.asarray(rng.standard_normal(m.num_features)))
            m.register_buffer("running_var", mc.asarray(rng.uniform(0.5, 2.0, m.num_features)))
    theirs = copy_to_torch(ours, TorchBasicBlock(cin, cout, stride, shortcut).double())
    ours.train(training)
    theirs.train(training)
    assert_forward_and_input_grad_match(ours, theirs, _block_input(cin, 6, n=3, hw=7), rng)
    _compare_grads_and_buffers(ours, theirs, "block")


def _sgd_steps(shortcut, steps=3, batch=3, seed=7):
    """ResNet-20 and its PyTorch twin (weights copied through state_dict), ``steps`` SGD
    steps (momentum 0.9, weight decay 1e-4) on one batch; everything compared at each step."""
    torch = _torch()
    import torch.nn.functional as F

    from benchmarks.torch_models import TorchResNet

    mc.manual_seed(seed)
    ours = ResNet(20, shortcut=shortcut)
    theirs = copy_to_torch(ours, TorchResNet(20, shortcut=shortcut).double())
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((batch, 3, 32, 32)), rng.integers(0, 10, batch)
    ce = nn.CrossEntropyLoss()
    opt = mc.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for step in range(steps):
        out = ours(mc.asarray(x))
        loss = ce(out, mc.asarray(y))
        opt.zero_grad()
        dx = ours.backward(ce.backward())
        tx = torch.tensor(x, requires_grad=True)
        tout = theirs(tx)
        tloss = F.cross_entropy(tout, torch.from_numpy(y))
        topt.zero_grad()
        tloss.backward()
        assert_close(out, tout, f"step {step} logits")
        assert_close(loss, tloss, f"step {step} loss")
        assert_close(dx, tx.grad, f"step {step} input gradient")
        _compare_grads_and_buffers(ours, theirs, f"step {step}")
        opt.step()
        topt.step()
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():  # BatchNorm's weight and bias decay too, as in PyTorch
        assert_close(p.data, tparams[name], f"weights after {steps} steps: {name}")
    return ours, theirs


@pytest.mark.torch
@pytest.mark.usefixtures("cpu_backend", "float64")
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_resnet20_three_sgd_steps_match_torch(shortcut):
    torch = _torch()
    ours, theirs = _sgd_steps(shortcut)
    # evaluation mode uses the running statistics both libraries have accumulated
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(8).standard_normal((2, 3, 32, 32))
    assert_close(ours(mc.asarray(x)), theirs(torch.from_numpy(x)), "eval-mode logits")


# --- the module tree ----------------------------------------------------------------

@pytest.mark.parametrize("depth,params", [(20, 269_722), (32, 464_154), (56, 853_018)])
def test_parameter_counts_and_torch_keys(depth, params):
    model = ResNet(depth)
    assert sum(p.data.size for p in model.parameters()) == params  # He et al.: 0.27 M, 0.46 M, 0.85 M
    assert sum(isinstance(m, nn.BasicBlock) for m in model.modules()) == 3 * (depth - 2) // 6
    torch_models = pytest.importorskip("benchmarks.torch_models", reason="PyTorch is not installed")
    for shortcut in ("A", "B"):
        ours = ResNet(depth, shortcut=shortcut).state_dict()
        theirs = torch_models.TorchResNet(depth, shortcut=shortcut).state_dict()
        assert list(ours) == list(theirs)
        assert all(tuple(ours[k].shape) == tuple(theirs[k].shape) for k in ours)


def test_model_registry_and_structure():
    for name, depth in [("resnet20", 20), ("resnet32", 32), ("resnet56", 56)]:
        assert isinstance(MODELS[name](), ResNet) and MODELS[name]().depth == depth
    m = resnet20()
    assert [name for name, _ in m.named_children()] == ["conv1", "bn1", "relu", "layer1", "layer2", "layer3",
                                                       "avgpool", "flatten", "fc"]
    assert isinstance(m.layer1[0].shortcut, nn.Identity)
    assert isinstance(m.layer2[0].shortcut, nn.ZeroPadShortcut) and isinstance(m.layer2[1].shortcut, nn.Identity)
    assert m.conv1.bias is None and all(b.conv1.bias is None and b.conv2.bias is None for b in m.layer3)
    assert list(resnet20(shortcut="B").layer3[0].shortcut.state_dict()) == [
        "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    with pytest.raises(ValueError, match="6n \\+ 2"):
        ResNet(21)
    with pytest.raises(ValueError, match="shortcut"):
        ResNet(20, shortcut="C")


def test_shapes_through_the_stages():
    m = resnet20()
    x = m.relu(m.bn1(m.conv1(mc.asarray(np.zeros((2, 3, 32, 32), np.float32)))))
    for stage, size in [(m.layer1, (2, 16, 32, 32)), (m.layer2, (2, 32, 16, 16)), (m.layer3, (2, 64, 8, 8))]:
        x = stage(x)
        assert tuple(x.shape) == size
    assert tuple(m.fc(m.flatten(m.avgpool(x))).shape) == (2, 10)


def test_block_as_input_layer_skips_the_input_gradient():
    """A block that is a model's first layer (Trainer turns the input gradient off) returns
    None and still fills every parameter gradient."""
    net = nn.Sequential(nn.BasicBlock(3, 8, 2, "B"), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    net.requires_input_grad_(False)
    out = net(mc.asarray(np.random.default_rng(9).standard_normal((2, 3, 8, 8)).astype(np.float32)))
    assert net.backward(mc.asarray(np.ones(out.shape, np.float32))) is None
    assert all(p.grad is not None for p in net.parameters())


def test_zero_pad_shortcut_places_the_channels_in_the_middle():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2, 3, 4, 4)
    y = mc.to_numpy(nn.ZeroPadShortcut(3, 8, 2)(mc.asarray(x)))
    assert y.shape == (2, 8, 2, 2)
    np.testing.assert_array_equal(y[:, 2:5], x[:, :, ::2, ::2])  # front = (8 - 3) // 2 = 2
    assert not y[:, :2].any() and not y[:, 5:].any()


# --- the CPU backends agree -----------------------------------------------------------
#
# In float64 the numpy and numba backends train ResNet-20 to the same numbers (measured:
# 1e-14 apart after five steps). In float32 they are compared on one forward pass only:
# a single float32 backward of ResNet-20 is already up to ~1 % away from float64 on a few
# weight gradients, in PyTorch as much as in either backend (measured: 0.82 % torch,
# 0.84 % numpy, 0.82 % numba on batch 16; pre-activations near 0 flip ReLU's mask), and
# SGD steps then amplify such differences.

def _train(backend_name, dtype, steps=4, batch=6):
    prev = mc.backend_name()
    mc.set_backend(backend_name)
    try:
        mc.manual_seed(0)
        model = resnet20().to(dtype)
        opt = mc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        ce = nn.CrossEntropyLoss()
        rng = np.random.default_rng(1)
        losses, first_logits = [], None
        for _ in range(steps):
            x = mc.asarray(rng.standard_normal((batch, 3, 32, 32)).astype(dtype))
            logits = model(x)
            first_logits = mc.to_numpy(logits) if first_logits is None else first_logits
            loss = ce(logits, mc.asarray(rng.integers(0, 10, batch)))
            opt.zero_grad()
            model.backward(ce.backward())
            opt.step()
            losses.append(float(loss))
        return first_logits, losses, model.state_dict()
    finally:
        mc.set_backend(prev)


def test_numpy_and_numba_train_resnet20_alike():
    if "numba" not in mc.available_backends():
        pytest.skip("numba is not installed")
    _, l_np, w_np = _train("numpy", np.float64)
    _, l_nb, w_nb = _train("numba", np.float64)
    assert len(set(l_np)) == len(l_np)  # it trains: the loss moves every step
    np.testing.assert_allclose(l_nb, l_np, rtol=1e-10)
    for k in w_np:
        np.testing.assert_allclose(w_nb[k], w_np[k], rtol=1e-8, atol=1e-12, err_msg=k)
    y_np, l_np, _ = _train("numpy", np.float32, steps=1)
    y_nb, l_nb, _ = _train("numba", np.float32, steps=1)
    np.testing.assert_allclose(y_nb, y_np, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(l_nb, l_np, rtol=1e-5)
