"""Module plumbing: registration, state_dict names/shapes, checkpoints, errors, backends."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import DeconvNet, MNISTNet, Net2, TutorialNet


def test_state_dict_keys_and_shapes_match_pytorch_layouts():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ConvTranspose2d(4, 2, 3), nn.Flatten(),
                      nn.Linear(2 * 7 * 7, 5))
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert sd["0.weight"].shape == (4, 3, 3, 3)       # OIHW
    assert sd["2.weight"].shape == (4, 2, 3, 3)       # ConvTranspose: (in, out, kH, kW)
    assert sd["4.weight"].shape == (5, 98)            # Linear: (out, in)
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"].shape == ()


def test_default_init_bounds_follow_pytorch():
    mc.manual_seed(0)
    c = nn.Conv2d(6, 16, 5)
    t = nn.ConvTranspose2d(16, 6, 5)
    lin = nn.Linear(400, 120)
    for w, fan_in in [(c.weight, 150), (t.weight, 150), (lin.weight, 400), (c.bias, 150), (t.bias, 150)]:
        a = mc.to_numpy(w.data)
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(a).max() <= bound
        assert np.abs(a).max() > 0.9 * bound  # really uniform over the whole range
    assert c.weight.dtype == np.float32


def test_seed_reproducible_and_distinct():
    mc.manual_seed(5)
    a = TutorialNet().state_dict()
    mc.manual_seed(5)
    b = TutorialNet().state_dict()
    mc.manual_seed(6)
    c = TutorialNet().state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])


def test_save_load_roundtrip(tmp_path):
    mc.manual_seed(1)
    net = DeconvNet()
    opt = mc.optim.Adam(net.parameters(), lr=1e-3)
    x = mc.asarray(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    logits, xhat = net(x)
    net.backward(mc.asarray(np.ones(logits.shape, np.float32)), mc.asarray(np.ones(xhat.shape, np.float32)))
    opt.step()
    path = mc.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "tag": "run"},
                   tmp_path / "ck.npz")
    assert not list(tmp_path.glob("*.tmp"))
    ck = mc.load(path)
    assert ck["epoch"] == 3 and ck["tag"] == "run"
    mc.manual_seed(2)
    net2 = DeconvNet().load_state_dict(ck["model"])
    opt2 = mc.optim.Adam(net2.parameters(), lr=1e-3)
    opt2.load_state_dict(ck["optimizer"])
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, net2.state_dict()[k])
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for i in s1:
        np.testing.assert_array_equal(s1[i]["exp_avg"], s2[i]["exp_avg"])
        assert s1[i]["step"] == s2[i]["step"]


def test_load_refuses_pickles(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        mc.load(p)


def test_load_state_dict_lists_mismatches():
    sd = TutorialNet().state_dict()
    sd["conv1.weight"] = np.zeros((6, 3, 3, 3), np.float32)
    sd["extra.weight"] = np.zeros(3)
    del sd["fc3.bias"]
    with pytest.raises(ValueError) as e:
        TutorialNet().load_state_dict(sd)
    msg = str(e.value)
    assert "conv1.weight" in msg and "(6, 3, 3, 3)" in msg and "(6, 3, 5, 5)" in msg
    assert "fc3.bias" in msg and "extra.weight" in msg


def test_wrong_input_shape_names_layer():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 6.*expected 3 channels.*\(4, 1, 32, 32\)"):
        TutorialNet()(mc.asarray(np.zeros((4, 1, 32, 32), np.float32)))
    with pytest.raises(ValueError, match=r"Linear.*\(N, 400\)"):
        nn.Linear(400, 10)(mc.asarray(np.zeros((2, 399), np.float32)))
    with pytest.raises(ValueError, match="expected input"):
        nn.MaxPool2d(2)(mc.asarray(np.zeros((3, 4), np.float32)))


def test_backward_before_forward():
    for m in [nn.Conv2d(1, 1, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Linear(2, 2), nn.BatchNorm2d(2),
              nn.ConvTranspose2d(1, 1, 2), nn.MaxUnpool2d(2), nn.Dropout(), nn.CrossEntropyLoss()]:
        with pytest.raises(RuntimeError, match="before forward"):
            m.backward(mc.asarray(np.zeros((1, 1, 2, 2), np.float32)))


def test_grads_accumulate_until_zero_grad():
    lin = nn.Linear(3, 2)
    x = mc.asarray(np.ones((4, 3), np.float32))
    g = mc.asarray(np.ones((4, 2), np.float32))
    lin(x)
    lin.backward(g)
    first = mc.to_numpy(lin.weight.grad).copy()
    lin.backward(g)
    np.testing.assert_allclose(mc.to_numpy(lin.weight.grad), 2 * first)
    lin.zero_grad()
    assert lin.weight.grad is None


def test_unknown_backend_error_lists_available():
    with pytest.raises(mc.BackendError, match="unknown backend 'tensorflow'.*numpy"):
        mc.set_backend("tensorflow")


def test_cupy_without_gpu_is_a_clear_error():
    if "cupy" in mc.available_backends():
        pytest.skip("a GPU is present here")
    with pytest.raises(mc.BackendError, match="cupy"):
        mc.set_backend("cupy")
    assert mc.backend_name() in ("numpy", "numba")


def test_env_variable_selects_backend(monkeypatch):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import minicnn; print(minicnn.backend_name())"],
                         env={**__import__("os").environ, "MINICNN_BACKEND": "numba"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numba"


def test_all_seed_models_run_forward_and_backward():
    rng = np.random.default_rng(0)
    for model, shape in [(TutorialNet(), (2, 3, 32, 32)), (Net2(), (2, 3, 32, 32)), (MNISTNet(), (2, 1, 28, 28))]:
        out = model(mc.asarray(rng.standard_normal(shape).astype(np.float32)))
        assert out.shape == (2, 10) and out.dtype == np.float32
        dx = model.backward(mc.asarray(np.ones((2, 10), np.float32)))
        assert dx.shape == shape
        assert all(p.grad is not None for p in model.parameters())


def test_double_and_to_backend():
    m = TutorialNet().double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    m.to_backend("numpy")
    with pytest.raises(TypeError):
        m.to(np.int32)


def test_skipping_input_grad_keeps_parameter_grads():
    rng = np.random.default_rng(3)
    x = mc.asarray(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    g = mc.asarray(rng.standard_normal((2, 10)).astype(np.float32))
    grads = []
    for flag in (True, False):
        mc.manual_seed(4)
        net = TutorialNet().requires_input_grad_(flag)
        assert net.input_layer() is net.conv1
        net(x)
        dx = net.backward(g)
        assert (dx is None) == (not flag)
        grads.append({k: mc.to_numpy(p.grad) for k, p in net.named_parameters()})
    for k in grads[0]:
        np.testing.assert_array_equal(grads[0][k], grads[1][k], err_msg=k)


def test_a_shared_module_is_listed_once_and_saved_under_every_name():
    """PyTorch's rules: named_modules/parameters/buffers list a module registered twice once (its
    first name); state_dict and load_state_dict hold every name's keys."""
    shared = nn.BatchNorm1d(3)
    net = nn.Sequential(nn.Linear(3, 3), shared, shared)
    assert [n for n, _ in net.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    sd = net.state_dict()
    assert {"1.weight", "2.weight", "2.running_var"} <= set(sd)
    net.load_state_dict(sd)  # every key it wrote is one it expects
    torch = pytest.importorskip("torch")
    tshared = torch.nn.BatchNorm1d(3)
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 3), tshared, tshared)
    assert [n for n, _ in tnet.named_modules()] == [n for n, _ in net.named_modules()]
    assert list(tnet.state_dict()) == list(sd)


def test_parameters_and_submodules_are_plain_attributes_kept_in_step_with_their_tables():
    """``Module.__setattr__`` registers a parameter or sub-module in its table and also as a plain
    attribute (an ordinary lookup, no ``__getattr__``); replacing or deleting one updates both."""
    conv = nn.Conv2d(3, 4, 3)
    assert vars(conv)["weight"] is conv._parameters["weight"] is conv.weight
    seq = nn.Sequential(nn.ReLU())
    assert vars(seq)["0"] is seq._modules["0"]
    conv.weight = nn.Parameter(np.zeros((4, 3, 3, 3), np.float32))  # a new parameter: both places
    assert vars(conv)["weight"] is conv._parameters["weight"] and not conv.weight.data.any()
    conv.bias = None  # a parameter replaced by a plain value leaves the table
    assert "bias" not in conv._parameters and conv.bias is None
    assert [n for n, _ in conv.named_parameters()] == ["weight"]
    del conv.weight
    assert "weight" not in conv._parameters and "weight" not in vars(conv)
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        conv.weight
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        del conv.weight
    conv.register_buffer("scale", np.ones(4, np.float32))  # buffers stay behind __getattr__
    assert "scale" not in vars(conv) and conv.scale is conv._buffers["scale"]
    del conv.scale
    assert "scale" not in conv._buffers
    conv.register_buffer("unset", None)  # a buffer that holds None is deleted like any other
    del conv.unset
    assert "unset" not in conv._buffers
