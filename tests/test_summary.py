"""``minicnn.summary``: parameter totals, output shapes against a real forward pass
(layer by layer here, and PyTorch's own shapes through forward hooks on the twins
when torch is installed), the model left exactly as it was, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.models import DeconvNet, MNISTNet, TutorialNet, report_b_base, report_b_net1, report_b_net2, resnet20

NETS = {  # key of MODELS / TORCH_MODELS: (factory, input size without the batch)
    "tutorial": (TutorialNet, (3, 32, 32)),
    "mnist": (MNISTNet, (1, 28, 28)),
    "report_b_base": (report_b_base, (3, 32, 32)),
    "resnet20": (resnet20, (3, 32, 32)),
}


def _size(model):
    return sum(int(p.data.size) for p in model.parameters())


@pytest.mark.parametrize("make,size", [*NETS.values(), (DeconvNet, (3, 32, 32)), (report_b_net1, (3, 32, 32))])
def test_totals_are_the_parameter_count(make, size):
    model = make()
    s = mc.summary(model, size)
    assert s.total_params == s.trainable_params == _size(model)
    assert sum(r["params"] for r in s.rows) == _size(model)  # each parameter in exactly one row
    assert f"Total params: {_size(model):,}" in str(s)
    first = next(iter(model.parameters()))
    first.requires_grad = False  # a frozen input layer
    frozen = mc.summary(model, size)
    assert (frozen.total_params, frozen.trainable_params) == (_size(model), _size(model) - int(first.data.size))
    assert f"Non-trainable params: {int(first.data.size):,}" in str(frozen)


def test_report_b_base_shows_390410():
    s = str(mc.summary(report_b_base(), (3, 32, 32)))
    assert "Total params: 390,410" in s  # report B's count


def _layerwise_shapes(model, x):
    """Shapes from running the model by hand: each top-level child in turn, and inside a
    stage (a Sequential of blocks) each block in turn. {name: shape of its output}."""
    shapes = {}
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            for i, block in enumerate(child):
                x = block(x)
                shapes[f"{name}.{i}"] = tuple(x.shape)
        else:
            x = child(x)
            shapes[name] = tuple(x.shape)
    return shapes


@pytest.mark.parametrize("key", sorted(NETS))
@pytest.mark.parametrize("batch", [1, 3])
def test_output_shapes_match_a_real_forward(key, batch):
    make, size = NETS[key]
    model = make()
    s = mc.summary(model, size, batch_size=batch)
    assert s.input_shape == (batch, *size)
    model.eval()
    expected = _layerwise_shapes(model, mc.asarray(np.random.default_rng(0).standard_normal((batch, *size))
                                                   .astype(np.float32)))
    for name, shape in expected.items():
        rows = [r for r in s.rows if r["name"] == name or r["name"].startswith(name + ".")]
        assert rows, f"no row for {name}"
        assert rows[-1]["output_shape"] == shape, f"{name}: summary {rows[-1]['output_shape']} vs forward {shape}"
    assert s.rows[-1]["output_shape"] == (batch, 10)
    assert f"[-1, {', '.join(map(str, s.rows[0]['output_shape'][1:]))}]" in str(s)  # N printed as -1


@pytest.mark.torch
@pytest.mark.parametrize("key", sorted(NETS))
def test_output_shapes_match_torch(key):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the shapes oracle is optional")
    from benchmarks.torch_models import TORCH_MODELS

    make, size = NETS[key]
    theirs = TORCH_MODELS[key]().eval()
    seen = {}

    def record(name):
        def hook(module, inputs, output):  # returns None: the output stays as it is
            seen[name] = tuple(output.shape)
        return hook

    for name, m in theirs.named_modules():
        if name and not list(m.children()):
            m.register_forward_hook(record(name))
    with torch.no_grad():
        theirs(torch.zeros(2, *size))
    s = mc.summary(make(), size, batch_size=2)
    ours = {r["name"]: r["output_shape"] for r in s.rows}
    compared = [n for n in seen if n in ours]
    for name in compared:
        assert ours[name] == seen[name], f"{name}: summary {ours[name]} vs torch {seen[name]}"
    with_params = {r["name"] for r in s.rows if r["params"]}
    assert with_params <= set(compared), f"rows torch did not check: {sorted(with_params - set(compared))}"


def test_resnet_rows_are_named_by_their_dotted_path():
    s = mc.summary(resnet20(), (3, 32, 32), batch_size=2)
    names = [r["name"] for r in s.rows]
    assert names[:3] == ["conv1", "bn1", "relu"] and names[-1] == "fc"
    assert {"layer1.0.conv1", "layer2.0.shortcut", "layer3.2.bn2"} <= set(names)
    assert dict(zip(names, (r["output_shape"] for r in s.rows)))["layer2.0.conv1"] == (2, 32, 16, 16)
    assert "layer1.0.conv1 (Conv2d)" in str(s)


def test_model_is_left_as_it_was():
    """Training flags (mixed ones too), parameters, BatchNorm running statistics, the
    random generator and the caches of the last forward (a pending backward) survive."""
    mc.manual_seed(0)
    model = report_b_net1()
    model.train()
    model.relu2.eval()
    flags = [m.training for m in model.modules()]
    before = model.state_dict()
    rng = np.random.default_rng(1)
    x = mc.asarray(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    g = mc.asarray(rng.standard_normal((4, 10)).astype(np.float32))
    model(x)
    after_forward = model.state_dict()  # the training forward moved the running statistics
    mc.manual_seed(5)
    mc.summary(model, (3, 32, 32), batch_size=2)
    assert mc.default_generator().random() == np.random.default_rng(5).random()
    assert [m.training for m in model.modules()] == flags
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, after_forward[k], err_msg=k)
    assert any(not np.array_equal(before[k], after_forward[k]) for k in before)
    assert not any("forward" in vars(m) for m in model.modules())
    dx = model.backward(g)  # the caches are those of the (4, ...) batch, not summary's (2, ...)
    assert dx.shape == (4, 3, 32, 32)


def test_dropout_draws_nothing():
    model = report_b_net2()  # Dropout after each block; train mode would draw masks
    mc.manual_seed(3)
    s = mc.summary(model, (3, 32, 32))
    assert mc.default_generator().random() == np.random.default_rng(3).random()
    assert [r["type"] for r in s.rows].count("Dropout") == 3 and model.training


def test_layer_not_called_gets_a_row_without_shape():
    class WithSpare(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Linear(4, 3))
            self.spare = nn.Linear(3, 2)  # registered, never called

        def forward(self, x):
            return self._modules["0"](x)

    s = mc.summary(WithSpare(), (4,))
    assert [(r["name"], r["output_shape"]) for r in s.rows] == [("0", (1, 3)), ("spare", None)]
    assert s.total_params == 4 * 3 + 3 + 3 * 2 + 2 and "not called" in str(s)


def test_shared_layer_counts_its_parameters_once():
    fc = nn.Linear(3, 3)
    s = mc.summary(nn.Sequential(fc, nn.ReLU(), fc), (3,))  # one module registered twice, called twice
    assert [r["params"] for r in s.rows if r["type"] == "Linear"] == [12, 0]
    assert s.total_params == 12 and "(repeat)" in str(s)


@pytest.mark.parametrize("input_size,batch,match", [
    ((1, 3, 32, 32), 1, "leaves the batch dimension out"),  # the batch given twice: a 5-D input
    ((3, 28, 28), 1, "cannot take an input of shape"),       # fc1 expects 400 features
    ((3, 0, 32), 1, "positive int"),
    ((3, 32.0, 32), 1, "positive int"),
    ("3x32x32", 1, "tuple of positive ints"),
    ((), 1, "tuple of positive ints"),
    ((3, 32, 32), 0, "batch_size"),
])
def test_bad_sizes_are_clear_errors(input_size, batch, match):
    model = TutorialNet()
    model.train()
    with pytest.raises(ValueError, match=match):
        mc.summary(model, input_size, batch_size=batch)
    assert all(m.training for m in model.modules())  # restored after a failed forward too


def test_not_a_module():
    with pytest.raises(TypeError, match="minicnn.nn.Module"):
        mc.summary(lambda x: x, (3, 32, 32))
