"""minicnn.inspect: one test per defining property of each method, the two CPU
backends against each other, PyTorch autograd (when installed) and the
``experiments.visualize`` command end to end on a tiny checkpoint and a fake CIFAR-10.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `experiments` and `benchmarks` live at the top of the checkout
    sys.path.insert(0, str(ROOT))

import minicnn as mc  # noqa: E402
from minicnn import inspect, nn  # noqa: E402
from minicnn.train import save_model  # noqa: E402

from data_fixtures import write_cifar_folder  # noqa: E402


CPU_BACKENDS = [b for b in ("numpy", "numba") if b in mc.available_backends()]


@pytest.fixture(autouse=True)
def _restore_backend():
    prev = mc.backend_name()
    yield
    mc.set_backend(prev)


class GlobalAvgPool(nn.Module):
    """(N, C, h, w) -> (N, C): the mean of each map (Zhou et al.'s GAP); backward spreads dout / (h*w)."""

    def forward(self, x):
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        n, c, h, w = self._shape
        xp = mc.backend.current().xp
        return dout[:, :, None, None] * xp.ones((1, 1, h, w), dtype=dout.dtype) / (h * w)


def small_net(seed=0):
    """conv 2->3 k3 -> ReLU -> pool 2 -> conv 3->4 k3 p1 -> ReLU -> flatten -> fc 36->5 -> ReLU -> fc 5->4 (float64)."""
    mc.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(2, 3, 3), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(3, 4, 3, padding=1), relu2=nn.ReLU(), flatten=nn.Flatten(),
        fc1=nn.Linear(36, 5), relu3=nn.ReLU(), fc2=nn.Linear(5, 4))).double()


def images(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


# --- the defining properties -------------------------------------------------------

@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_deconv_projection_is_transposed_conv_of_unpooled_rectified_map(backend):
    """conv -> ReLU -> maxpool: projecting a map S from the pool equals conv_transpose(W, ReLU(unpool(S)))."""
    mc.set_backend(backend)
    mc.manual_seed(0)
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(2, 3, 3, padding=1), relu=nn.ReLU(), pool=nn.MaxPool2d(2))).double()
    x, s = images((2, 2, 8, 8)), images((2, 3, 4, 4), seed=2)  # s has negative entries: the ReLU must act
    got = mc.to_numpy(inspect.project(net, mc.asarray(x), "pool", mc.asarray(s)))
    switches = mc.to_numpy(net.pool.indices)
    unpooled = np.zeros((2, 3, 8 * 8))
    np.put_along_axis(unpooled, switches.reshape(2, 3, -1), s.reshape(2, 3, -1), axis=2)
    r = np.maximum(unpooled.reshape(2, 3, 8, 8), 0)
    w = mc.to_numpy(net.conv.weight.data)  # (O, C, 3, 3): each r pixel paints its filter back, weighted
    want = np.zeros((2, 2, 10, 10))
    for i in range(3):
        for j in range(3):
            want[:, :, i:i + 8, j:j + 8] += np.einsum("oc,nohw->nchw", w[:, :, i, j], r)
    np.testing.assert_allclose(got, want[:, :, 1:-1, 1:-1], rtol=1e-12, atol=1e-14)  # crop the padding

    # deconv_projection keeps each image's strongest activation of one channel only
    a = mc.to_numpy(inspect.forward_to(net, mc.asarray(x), "pool"))
    seed = np.zeros_like(a)
    for n in range(2):
        y, xx = np.unravel_index(a[n, 1].argmax(), a.shape[2:])
        seed[n, 1, y, xx] = a[n, 1, y, xx]
    np.testing.assert_allclose(mc.to_numpy(inspect.deconv_projection(net, mc.asarray(x), "pool", 1)),
                               mc.to_numpy(inspect.project(net, mc.asarray(x), "pool", mc.asarray(seed))), rtol=1e-12)


def test_saliency_is_the_finite_difference_gradient_of_the_class_score():
    net, x, target = small_net(), images((2, 2, 8, 8)), np.array([1, 3])
    got = mc.to_numpy(inspect.saliency(net, mc.asarray(x), target))

    def score(xv):
        with inspect.inspecting(net):
            return mc.to_numpy(inspect.forward_to(net, mc.asarray(xv)))[np.arange(2), target].sum()

    h, fd = 1e-6, np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = h
        fd.flat[i] = (score(x + d) - score(x - d)) / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


def test_guided_backprop_is_the_deconvnet_rule_with_the_forward_mask():
    net, x, target = small_net(), images((2, 2, 8, 8)), 2
    got = mc.to_numpy(inspect.guided_backprop(net, mc.asarray(x), target))
    # by hand: forward keeping every ReLU's input, backward with g -> max(g, 0) * (input > 0) at each ReLU
    net.eval()
    a, relu_in = mc.asarray(x), {}
    for name, m in inspect.layers(net):
        relu_in[name] = mc.to_numpy(a)
        a = m(a)
    g = np.zeros(mc.to_numpy(a).shape)
    g[:, target] = 1
    for name, m in reversed(inspect.layers(net)):
        if isinstance(m, nn.ReLU):
            g = np.maximum(g, 0) * (relu_in[name] > 0)  # the deconvnet rule, then the forward mask
        else:
            g = mc.to_numpy(m.backward(mc.asarray(g)))
    np.testing.assert_allclose(got, g, rtol=1e-12, atol=1e-15)
    assert not np.allclose(got, mc.to_numpy(inspect.saliency(net, mc.asarray(x), target)))


def test_grad_cam_is_the_class_activation_map_for_a_linear_head_on_gap():
    mc.manual_seed(0)
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(2, 4, 3, padding=1), relu=nn.ReLU(), gap=GlobalAvgPool(),
                                    fc=nn.Linear(4, 3))).double()
    x = images((2, 2, 6, 6))
    assert inspect.default_cam_layer(net) == "relu"
    got = mc.to_numpy(inspect.grad_cam(net, mc.asarray(x), [0, 2]))
    a = mc.to_numpy(inspect.forward_to(net, mc.asarray(x), "relu"))  # A (N, K, h, w)
    w = mc.to_numpy(net.fc.weight.data)                              # (classes, K)
    cam = np.einsum("nk,nkhw->nhw", w[[0, 2]], a)                    # Zhou et al.: sum_k w_ck A_k
    # Grad-CAM's alpha_k = w_ck / (h*w): the CAM up to that constant, and ReLU
    np.testing.assert_allclose(got, np.maximum(cam, 0) / 36, rtol=1e-12, atol=1e-15)
    assert (cam < 0).any()  # the ReLU mattered


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_grad_cam_is_non_negative_on_the_conv_maps_grid(backend):
    mc.set_backend(backend)
    mc.manual_seed(0)
    net = mc.models.TutorialNet()
    x = mc.asarray(images((3, 3, 32, 32)).astype(np.float32))
    assert inspect.default_cam_layer(net) == "relu2"
    cam = mc.to_numpy(inspect.grad_cam(net, x, [0, 1, 2]))
    assert cam.shape == (3,) + tuple(inspect.forward_to(net, x, "relu2").shape[2:]) == (3, 10, 10)
    assert (cam >= 0).all() and cam.max() > 0
    assert inspect.upsample(mc.asarray(cam), (32, 32)).shape == (3, 32, 32)


def test_occlusion_with_a_zero_size_patch_leaves_the_probabilities_unchanged():
    net = small_net()
    x = mc.asarray(images((1, 2, 8, 8)))
    before = mc.to_numpy(x).copy()
    p = mc.to_numpy(inspect.occlusion(net, x[0], size=0, stride=3))
    assert p.shape == (3, 3, 4)  # positions 0, 3, 6 along each axis
    np.testing.assert_allclose(p, np.broadcast_to(mc.to_numpy(inspect.probabilities(net, x))[0], p.shape),
                               rtol=1e-12)
    p4 = mc.to_numpy(inspect.occlusion(net, x[0], size=4, stride=2))
    assert p4.shape == (3, 3, 4) and not np.allclose(p4, p[:1, :1])
    np.testing.assert_array_equal(mc.to_numpy(x), before)  # the image itself is never painted over


@pytest.mark.parametrize("layer,targets", [("conv2", [0, 3]), (None, [1, 2])])
def test_activation_maximisation_increases_its_objective_monotonically(layer, targets):
    net = small_net()
    _, hist = inspect.activation_maximisation(net, (2, 8, 8), targets, layer, steps=40, lr=1e-3, l2=1e-2)
    assert hist.shape == (41, 2)
    assert (np.diff(hist, axis=0) >= -1e-12).all(), np.diff(hist, axis=0).min()
    assert (hist[-1] > hist[0]).all()


# --- bookkeeping: state restored, names checked, receptive fields --------------------

def test_inspecting_restores_modes_rules_input_grad_and_grads():
    net = small_net()
    net.train()
    net.relu1.backward_mode = "deconvnet"
    net.requires_input_grad_(False)
    net.fc2.weight.grad = mc.asarray(np.ones((4, 5)))
    x = mc.asarray(images((1, 2, 8, 8)))
    inspect.guided_backprop(net, x, 0)
    with pytest.raises(ValueError, match="unknown layer 'nope'.*conv1, relu1, pool1"):
        inspect.grad_cam(net, x, 0, layer="nope")
    assert all(m.training for m in net.modules())
    assert [net.relu1.backward_mode, net.relu2.backward_mode] == ["deconvnet", "normal"]
    assert net.input_layer().needs_input_grad is False
    np.testing.assert_array_equal(mc.to_numpy(net.fc2.weight.grad), 1)
    assert net.fc1.weight.grad is None and all(p.requires_grad for p in net.parameters())


def test_layers_of_deconvnet_are_its_encoder_and_head():
    net = mc.models.DeconvNet().double()
    assert [n for n, _ in inspect.layers(net)] == list(inspect.DECONVNET_CLASSIFIER)
    x = mc.asarray(images((2, 3, 32, 32)))
    net.eval()
    np.testing.assert_allclose(mc.to_numpy(inspect.forward_to(net, x)), mc.to_numpy(net(x)[0]), rtol=1e-12)
    assert inspect.conv_layers(net) == ["conv1", "conv2"]


def test_receptive_fields_of_the_tutorial_net():
    net = mc.models.TutorialNet()
    assert inspect.receptive_field(net, "conv1", (3, 4), (32, 32)) == (3, 8, 4, 9)
    assert inspect.receptive_field(net, "conv2", (0, 0), (32, 32)) == (0, 14, 0, 14)  # conv2 5 -> pool1 10 -> conv1 14
    assert inspect.receptive_field(net, "conv2", (9, 9), (32, 32)) == (18, 32, 18, 32)
    assert inspect.receptive_field(net, "fc1", (0, 0), (32, 32)) == (0, 32, 0, 32)


# --- every backend, and PyTorch ---------------------------------------------------------

@pytest.mark.skipif("numba" not in CPU_BACKENDS, reason="numba backend not available")
def test_every_method_agrees_on_every_backend():
    """numpy, numba and (on a GPU machine) cupy give the same maps."""
    results = {}
    for be in [b for b in ("numpy", "numba", "cupy") if b in mc.available_backends()]:
        mc.set_backend(be)
        mc.manual_seed(0)
        net = mc.models.TutorialNet().double()
        data = images((12, 3, 32, 32))
        x = mc.asarray(data[:2])
        top = inspect.top_activations(net, data, "conv2", k=3, batch_size=5)
        out = {"saliency": inspect.saliency(net, x, [3, 7]), "guided": inspect.guided_backprop(net, x, 1),
               "gradcam": inspect.grad_cam(net, x, [0, 9]), "occlusion": inspect.occlusion(net, x[0], 8, 6),
               "actmax": inspect.activation_maximisation(net, (3, 32, 32), [0, 5], "conv1", steps=6, jitter=2,
                                                         blur_every=2, clip=(-1, 1))[0],
               "top": top["indices"], "deconv": inspect.deconv_projection(
                   net, mc.asarray(data[top["indices"][4]]), "conv2", 4, top["where"][4])}
        results[be] = {k: mc.to_numpy(v) for k, v in out.items()}
    for be in results:
        for k, v in results["numpy"].items():
            np.testing.assert_allclose(results[be][k], v, rtol=1e-9, atol=1e-12, err_msg=f"{be}: {k}")


def test_saliency_guided_and_grad_cam_equal_pytorch_autograd():
    pytest.importorskip("torch", reason="PyTorch is not installed: it is only the oracle here")
    from benchmarks.torch_inspect import compare

    for net in ("tutorial", "mnist"):
        for name, (absolute, relative) in compare(net, "numpy", n_images=3).items():
            assert absolute < 1e-5 and relative < 1e-5, (net, name, absolute, relative)


# --- the command ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A fake CIFAR-10 and a random TutorialNet saved as task1 saves its model."""
    root = tmp_path_factory.mktemp("vis")
    write_cifar_folder(root / "data", n_per_batch=4, n_test=30)
    prev = mc.backend_name()
    mc.set_backend("numpy")
    mc.manual_seed(0)
    save_model(root / "task1" / "model.npz", mc.models.TutorialNet(),
               {"model": "TutorialNet", "normalize_mean": [0.5] * 3, "normalize_std": [0.5] * 3})
    mc.set_backend(prev)
    return root


def test_visualize_command_writes_every_figure(tiny_run, capsys):
    from experiments import visualize

    out = tiny_run / "figures"
    res = visualize.main(["--checkpoint", str(tiny_run / "task1" / "model.npz"), "--data-dir", str(tiny_run / "data"),
                          "--n-images", "20", "--channel", "3", "--steps", "3", "--image-index", "2",
                          "--class", "cat", "--backend", "numpy", "--out", str(out)])
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["actmax_classes.png", "actmax_conv1.png", "actmax_conv2.png", "deconv_conv2_ch3.png",
                     "gradcam.png", "guided_backprop.png", "occlusion.png", "saliency.png"]
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000, p
    assert res["model"] == "tutorial" and set(res["times_s"]) == set(visualize.METHODS)
    assert "[deconv] 1 figure(s)" in capsys.readouterr().out


def test_visualize_infers_the_model_from_bare_weights_and_errs_clearly(tiny_run, capsys):
    from experiments import visualize

    data = ["--data-dir", str(tiny_run / "data"), "--backend", "numpy"]
    bare = tiny_run / "bare.npz"
    mc.save(mc.load(tiny_run / "task1" / "model.npz")["model"], bare)  # a state_dict and nothing else
    res = visualize.main(["--checkpoint", str(bare), "--method", "saliency", "--out", str(tiny_run / "b"), *data])
    assert res["model"] == "tutorial"
    ck = str(tiny_run / "task1" / "model.npz")
    for argv, message in ((["--checkpoint", str(tiny_run / "missing.npz")], "no such file"),
                          (["--checkpoint", ck, "--model", "deconv"], "holds a TutorialNet"),
                          (["--checkpoint", str(bare), "--model", "net2"], "does not fit --model net2"),
                          (["--checkpoint", ck, "--method", "deconv", "--layer", "conv9"],
                           "unknown layer 'conv9'.*conv1, relu1, pool1, conv2"),
                          (["--checkpoint", ck, "--method", "deconv", "--channel", "16"], "channels 0..15"),
                          (["--checkpoint", ck, "--image-index", "30"], "outside the test split")):
        with pytest.raises(SystemExit, match=message):
            visualize.main([*argv, "--out", str(tiny_run / "e"), *data])
