"""The nets of the course's other reports (B, C, D): output shapes, parameter
counts worked out from the layer shapes, layer order, finite-difference gradient
checks (float64, every CPU backend), float64 PyTorch parity against the twins in
``benchmarks/torch_models.py`` (forward, input gradient and every parameter
gradient, BatchNorm running statistics; skipped without torch), and ``Net2``
staying what old checkpoints expect."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import (MODELS, DropoutStudyNet, Net2, SmallCifarNet, ThreeBlockNet, report_b_base,
                            report_b_net1, report_b_net2)

from conftest import assert_close, assert_forward_and_input_grad_match, copy_to_torch, gradcheck


def conv(cin, cout, k):
    return cin * cout * k * k + cout  # weight (cout, cin, k, k) + bias (cout,)


def fc(fan_in, fan_out):
    return fan_in * fan_out + fan_out


def pooled(size, k=0, times=1):
    """Spatial size after ``times`` rounds of (conv k without padding when k > 0) + max pool 2."""
    for _ in range(times):
        size = (size - k + 1 if k else size) // 2
    return size


SMALL_CIFAR = (conv(3, 12, 5) + conv(12, 24, 5) + fc(24 * pooled(32, 5, 2) ** 2, 120)
               + fc(120, 84) + fc(84, 10))
REPORT_B_BASE = conv(3, 32, 5) + conv(32, 64, 5) + conv(64, 128, 5) + fc(128 * pooled(32, 0, 3) ** 2, 64) + fc(64, 10)
REPORT_B_BN = 2 * (32 + 64 + 128) + 2 * 64  # weight and bias of BatchNorm2d x3 and BatchNorm1d(64)
DROPOUT_STUDY = (conv(3, 32, 3) + conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 64, 3)
                 + fc(64 * pooled(32, 0, 2) ** 2, 512) + fc(512, 10))

# key: (our model, name of the torch twin's factory and its arguments, parameter count, mode for parity)
CASES = {
    "small_cifar": (SmallCifarNet, ("TorchSmallCifarNet",), SMALL_CIFAR, "train"),
    "report_b_base": (report_b_base, ("torch_report_b_base",), REPORT_B_BASE, "train"),
    "report_b_net1": (report_b_net1, ("torch_report_b_net1",), REPORT_B_BASE + REPORT_B_BN, "train"),
    "report_b_net1_eval": (report_b_net1, ("torch_report_b_net1",), REPORT_B_BASE + REPORT_B_BN, "eval"),
    "report_b_net2": (report_b_net2, ("torch_report_b_net2",), REPORT_B_BASE, "eval"),
    "dropout_study_relu": (lambda: DropoutStudyNet(0.2, "relu"), ("TorchDropoutStudyNet", 0.2, "relu"),
                           DROPOUT_STUDY, "eval"),
    "dropout_study_gelu": (lambda: DropoutStudyNet(0.2, "gelu"), ("TorchDropoutStudyNet", 0.2, "gelu"),
                           DROPOUT_STUDY, "eval"),
    "dropout_study_p0_train": (lambda: DropoutStudyNet(0.0, "gelu"), ("TorchDropoutStudyNet", 0.0, "gelu"),
                               DROPOUT_STUDY, "train"),
}
NEW_KEYS = ["small_cifar", "report_b_base", "report_b_net1", "report_b_net2", "dropout_study"]


# --- structure ----------------------------------------------------------------------

def test_report_b_base_has_the_reports_parameter_count():
    assert REPORT_B_BASE == 390_410  # report B's stated count, here from the layer shapes
    assert sum(p.data.size for p in report_b_base().parameters()) == REPORT_B_BASE


@pytest.mark.parametrize("case", sorted(CASES))
def test_shape_and_parameter_count(case):
    make, _, count, _ = CASES[case]
    model = make()
    assert sum(int(p.data.size) for p in model.parameters()) == count
    x = mc.asarray(np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32))
    assert model(x).shape == (3, 10)


def test_registered_under_their_keys():
    expected = {"small_cifar": SmallCifarNet, "report_b_base": ThreeBlockNet, "report_b_net1": ThreeBlockNet,
                "report_b_net2": ThreeBlockNet, "dropout_study": DropoutStudyNet}
    for key, cls in expected.items():
        assert type(MODELS[key]()) is cls, key
    assert (report_b_net1().batch_norm, report_b_net1().dropout) == (True, 0.0)
    assert (report_b_net2().batch_norm, report_b_net2().dropout) == (False, 0.05)
    assert MODELS["net2"] is Net2


def _three_block_names(bn: bool, drop: bool) -> list[str]:
    """Report B's layer order, written out: conv [bn] relu pool [drop] x3, flatten fc1 [bn4] relu4 fc2."""
    names = []
    for k in (1, 2, 3):
        names += [f"conv{k}"] + [f"bn{k}"] * bn + [f"relu{k}", f"pool{k}"] + [f"drop{k}"] * drop
    return names + ["flatten", "fc1"] + ["bn4"] * bn + ["relu4", "fc2"]


def test_three_block_net_layer_order():
    def names(m):
        return [n for n, _ in m.named_children()]

    assert names(report_b_base()) == _three_block_names(False, False)
    assert names(report_b_net1()) == _three_block_names(True, False)
    assert names(report_b_net2()) == _three_block_names(False, True)
    net1 = report_b_net1()
    assert [type(net1.bn1), type(net1.bn2), type(net1.bn3), type(net1.bn4)] == [nn.BatchNorm2d] * 3 + [nn.BatchNorm1d]
    assert all(m.p == 0.05 for n, m in report_b_net2().named_children() if n.startswith("drop"))


def test_dropout_study_activation_and_dropout():
    gelu = DropoutStudyNet(0.3, "gelu")
    acts = [m for n, m in gelu.named_children() if n.startswith("act")]
    drops = [m for n, m in gelu.named_children() if n.startswith("drop")]
    assert len(acts) == 5 and all(isinstance(a, nn.GELU) for a in acts)
    assert len(drops) == 3 and all(d.p == 0.3 for d in drops)
    assert all(isinstance(a, nn.ReLU) for n, a in DropoutStudyNet().named_children() if n.startswith("act"))


def test_net2_is_report_b_base_under_its_old_name():
    net2 = Net2()
    assert isinstance(net2, ThreeBlockNet) and not net2.batch_norm and net2.dropout == 0.0
    keys = [f"{layer}.{p}" for layer in ("conv1", "conv2", "conv3", "fc1", "fc2") for p in ("weight", "bias")]
    assert list(net2.state_dict()) == keys  # what Net2 checkpoints hold
    base = report_b_base()
    assert list(base.state_dict()) == keys
    base.load_state_dict(net2.state_dict())
    x = mc.asarray(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    np.testing.assert_array_equal(mc.to_numpy(base(x)), mc.to_numpy(net2(x)))


@pytest.mark.parametrize("bad,match", [
    (lambda: ThreeBlockNet(dropout=1.0), "dropout"),
    (lambda: ThreeBlockNet(dropout=-0.1), "dropout"),
    (lambda: ThreeBlockNet(batch_norm="yes"), "batch_norm"),
    (lambda: DropoutStudyNet(activation="tanh"), "gelu"),
    (lambda: DropoutStudyNet(p=1.5), "p must be"),
])
def test_bad_arguments_say_what_is_wrong(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


def test_wrong_image_size_is_a_clear_error():
    with pytest.raises(ValueError, match="2048"):  # fc1 names the features it expected
        report_b_base()(mc.asarray(np.zeros((1, 3, 28, 28), np.float32)))


# --- finite differences ---------------------------------------------------------------

GRADCHECK = {
    "small_cifar": lambda: SmallCifarNet(),
    "report_b_bn_dropout": lambda: ThreeBlockNet(batch_norm=True, dropout=0.1),
    "dropout_study_gelu": lambda: DropoutStudyNet(0.1, "gelu"),
}


@pytest.mark.usefixtures("cpu_backend", "float64")
@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck(name):
    """Input and every parameter, a few entries each. Dropout in train mode, reseeded before
    every forward so every evaluation drops the same units. BatchNorm in eval mode, on
    running statistics moved away from (0, 1) by one training batch: in train mode the
    batch mean cancels a conv bias exactly, and a zero gradient has no relative error to
    check (train-mode BatchNorm is compared with PyTorch below)."""
    mc.manual_seed(2)
    model = GRADCHECK[name]()
    rng = np.random.default_rng(3)
    model(mc.asarray(rng.standard_normal((4, 3, 32, 32)) + 0.5))
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.eval()
    gradcheck(model, [rng.standard_normal((2, 3, 32, 32))], max_entries=3, reseed=5)


# --- PyTorch parity ----------------------------------------------------------------------

def _twin(spec):
    pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")
    import benchmarks.torch_models as tm

    return getattr(tm, spec[0])(*spec[1:])


@pytest.mark.torch
@pytest.mark.parametrize("key", NEW_KEYS)
def test_state_dict_keys_equal_the_torch_twin(key):
    pytest.importorskip("torch", reason="PyTorch is not installed: the twins need it")
    from benchmarks.torch_models import TORCH_MODELS

    theirs = TORCH_MODELS[key]()
    assert list(MODELS[key]().state_dict()) == list(theirs.state_dict())
    assert sum(p.numel() for p in theirs.parameters()) == sum(p.data.size for p in MODELS[key]().parameters())


@pytest.mark.torch
@pytest.mark.usefixtures("cpu_backend", "float64")
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch(case):
    pytest.importorskip("torch", reason="PyTorch is not installed: parity tests need it as an oracle")
    make, spec, _, mode = CASES[case]
    mc.manual_seed(6)
    ours = make()
    rng = np.random.default_rng(7)
    for m in ours.modules():  # running statistics away from (0, 1), so that eval mode tests them
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.register_buffer("running_mean", mc.asarray(rng.standard_normal(m.num_features)))
            m.register_buffer("running_var", mc.asarray(rng.uniform(0.5, 2.0, m.num_features)))
    theirs = _twin(spec).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs = copy_to_torch(ours, theirs)
    ours.train(mode == "train")
    theirs.train(mode == "train")
    assert_forward_and_input_grad_match(ours, theirs, rng.standard_normal((3, 3, 32, 32)), rng)
    tparams = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(tparams)
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, f"grad {name}")
    tbuf = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        assert_close(b, tbuf[name], f"buffer {name}")
