"""minicnn.viz: every figure function writes a PNG that opens, with a plausible size; bad
inputs are ValueErrors that say what was expected; the right/wrong colouring is checked through
its pure helpers and, robustly, through the pixels of the saved figure (exact fill colours)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from minicnn import viz
from minicnn.nn.module import Parameter
from minicnn.viz import _common, classification, inspection, training, weights

CLASSES = ["plane", "car", "bird", "cat"]


def png(path, min_w=200, min_h=100, max_side=4000) -> np.ndarray:
    """Open ``path`` as a PNG, check its size is plausible, return its RGB pixels."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert min_w <= w <= max_side and min_h <= h <= max_side, (w, h)
        return np.asarray(im.convert("RGB"))


def count_colour(pixels: np.ndarray, colour: str) -> int:
    rgb = np.round(np.array(to_rgb(colour)) * 255).astype(int)
    return int(np.all(np.abs(pixels.astype(int) - rgb) <= 2, axis=-1).sum())


@pytest.fixture
def figures(monkeypatch):
    """The Figure objects the viz functions save, in order (the files are still written)."""
    saved = []

    def keep(fig, path):
        saved.append(fig)
        return _common._save(fig, path)

    for mod in (classification, inspection, training, weights):
        monkeypatch.setattr(mod, "_save", keep)
    return saved


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def history(n=5, eval_every=1):
    rng = np.random.default_rng(0)
    epochs = []
    for e in range(1, n + 1):
        rec = {"epoch": e, "steps": 10, "train_loss": 2.0 / e, "train_accuracy": 0.3 + 0.1 * e}
        if eval_every and e % eval_every == 0:
            rec["eval"] = {"loss": 2.2 / e + 0.1 * rng.random(), "accuracy": 0.25 + 0.1 * e}
        epochs.append(rec)
    return {"log": [], "epochs": epochs}


# -- learning_curves ---------------------------------------------------------------------------

def test_learning_curves_marks_the_best_epoch(tmp_path, figures):
    p = viz.learning_curves(history(), tmp_path / "lc.png", "net: learning curves", best_epoch=3)
    pixels = png(p, 600, 300)
    fig = figures[-1]
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert acc_ax.get_ylabel() == "accuracy (%)" and fig.get_suptitle() == "net: learning curves"
    for ax in (loss_ax, acc_ax):
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["train", "val", "best epoch 3"]
        assert any(list(ln.get_xdata()) == [3, 3] for ln in ax.get_lines())  # the vertical line
    np.testing.assert_allclose(acc_ax.get_lines()[1].get_ydata(), [35, 45, 55, 65, 75])  # eval accuracy in %
    assert count_colour(pixels, "C2") > 20  # the star marker
    plain = png(viz.learning_curves(history(), tmp_path / "lc0.png", "t", eval_name="test"))
    assert count_colour(plain, "C2") == 0
    assert figures[-1].axes[0].get_legend_handles_labels()[1] == ["train", "test"]


def test_learning_curves_with_missing_or_no_eval(tmp_path, figures):
    viz.learning_curves(history(6, eval_every=2), tmp_path / "gaps.png", "every other epoch", best_epoch=4)
    eval_line = figures[-1].axes[0].get_lines()[1]
    assert list(eval_line.get_xdata()) == [2, 4, 6]
    # no evaluation at all; the best epoch still gets its line and legend entry
    p = viz.learning_curves(history(3, eval_every=0), tmp_path / "none.png", "no eval", best_epoch=2)
    png(p)
    assert figures[-1].axes[0].get_legend_handles_labels()[1] == ["train", "best epoch 2"]
    one = {"epochs": [{"epoch": 1, "steps": 1, "train_loss": 1.0, "train_accuracy": None}]}
    png(viz.learning_curves(one, tmp_path / "one.png", "one epoch"))


def test_learning_curves_validates(tmp_path):
    with pytest.raises(ValueError, match="no epochs"):
        viz.learning_curves({"epochs": []}, tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match="'epochs' list"):
        viz.learning_curves([1, 2], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match=r"best_epoch=9 is not one of the history's epochs \(1\.\.5\)"):
        viz.learning_curves(history(), tmp_path / "x.png", "t", best_epoch=9)
    assert not (tmp_path / "x.png").exists()


# -- weight_histograms -------------------------------------------------------------------------

class FakeDeviceArray:
    """Stands in for a CuPy array: np.asarray would not do; .get() copies to the host."""

    def __init__(self, a):
        self._a = a

    def get(self):
        return self._a


def test_weight_histograms(tmp_path, figures):
    rng = np.random.default_rng(1)
    named = [("conv1.weight", rng.normal(0, 0.1, (8, 3, 3, 3))), ("conv1.bias", np.zeros(8)),
             ("fc.weight", FakeDeviceArray(rng.normal(0, 0.05, (10, 32)).astype(np.float32))),
             ("fc.bias", Parameter(np.full(10, 0.5))), ("bad", np.array([1.0, np.nan, 2.0]))]
    p = viz.weight_histograms(named, tmp_path / "w.png", "weights after training", bins=20)
    png(p, 600, 300)
    fig = figures[-1]
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(titles) == 5 and titles[0].startswith("conv1.weight (8, 3, 3, 3)\nmean ")
    assert "std 0" in titles[1] and titles[3] == "fc.bias (10,)\nmean 0.5, std 0"
    assert titles[4].endswith("1 non-finite") and "fc.weight (10, 32)" in titles[2]
    assert all(ax.get_xlabel() == "value" and ax.get_ylabel() == "count" for ax in fig.axes if ax.axison)
    png(viz.weight_histograms(dict(named[:2]), tmp_path / "d.png", "from a dict"))


def test_weight_histograms_validates(tmp_path):
    with pytest.raises(ValueError, match="named_params is empty"):
        viz.weight_histograms([], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match=r"named_params\[1\] should be a \(name, array\) pair"):
        viz.weight_histograms([("a", np.ones(3)), np.ones(3)], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        viz.weight_histograms([("a", np.ones(3))], tmp_path / "x.png", "t", bins=0)


# -- classified_grid ---------------------------------------------------------------------------

def test_verdict_colour():
    assert viz.verdict_colour("cat", "cat") == viz.CORRECT_COLOUR
    assert viz.verdict_colour("dog", "cat") == viz.WRONG_COLOUR
    assert viz.verdict_colour(3, 3) == viz.CORRECT_COLOUR != viz.WRONG_COLOUR


@pytest.mark.parametrize("shape", [(5, 3, 12, 12), (5, 12, 12, 3), (5, 1, 12, 12), (5, 12, 12)])
def test_classified_grid_layouts_and_colours(tmp_path, shape):
    grey = np.full(shape, 0.5)
    right = png(viz.classified_grid(grey, ["cat"] * 5, ["cat"] * 5, tmp_path / "r.png", "correct", ncols=3))
    wrong = png(viz.classified_grid(grey, ["cat"] * 5, ["dog"] * 5, tmp_path / "w.png", "wrong", ncols=3))
    assert count_colour(right, viz.CORRECT_COLOUR) > 100 and count_colour(right, viz.WRONG_COLOUR) == 0
    assert count_colour(wrong, viz.WRONG_COLOUR) > 100 and count_colour(wrong, viz.CORRECT_COLOUR) == 0


def test_classified_grid_captions_and_empty(tmp_path, figures):
    imgs = np.random.default_rng(2).random((3, 3, 8, 8))
    viz.classified_grid(imgs, ["cat", "dog", "car"], ["cat", "cat", "car"], tmp_path / "m.png", "mixed")
    axes = [ax for ax in figures[-1].axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["true: cat\npred: cat", "true: dog\npred: cat", "true: car\npred: car"]
    assert [ax.title.get_color() for ax in axes] == [viz.CORRECT_COLOUR, viz.WRONG_COLOUR, viz.CORRECT_COLOUR]
    p = viz.classified_grid(np.zeros((0, 3, 8, 8)), [], [], tmp_path / "none.png", "wrongly classified")
    png(p, 200, 100)
    assert "none" in texts(figures[-1])
    png(viz.classified_grid([], [], [], tmp_path / "none2.png", "empty list"))


def test_classified_grid_validates(tmp_path):
    imgs = np.zeros((2, 3, 8, 8))
    with pytest.raises(ValueError, match="expected 2 entries .* pred_names has 1"):
        viz.classified_grid(imgs, ["a", "b"], ["a"], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, H, W\).* got shape \(2, 5, 8, 8\)"):
        viz.classified_grid(np.zeros((2, 5, 8, 8)), ["a", "b"], ["a", "b"], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match=r"got shape \(8, 8\)"):
        viz.classified_grid(np.zeros((8, 8)), ["a"], ["a"], tmp_path / "x.png", "t")


# -- softmax_table -----------------------------------------------------------------------------

def test_softmax_cell_colours():
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.6, 0.1]])
    assert viz.softmax_cell_colours(probs, [0, 1]) == [
        [viz.CORRECT_COLOUR, None, None, None], [None, None, viz.WRONG_COLOUR, None]]


def test_softmax_table(tmp_path, figures):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(10, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = probs.argmax(1)
    labels[:3] = (labels[:3] + 1) % 4  # three wrong, seven right
    imgs = np.full((10, 3, 16, 16), 0.5)
    pixels = png(viz.softmax_table(imgs, probs, labels, CLASSES, tmp_path / "s.png", "softmax"), 300, 600)
    all_text = texts(figures[-1])
    assert f"{100 * probs[0, 0]:.1f}%" in all_text and f"true: {CLASSES[labels[4]]}" in all_text
    assert set(CLASSES) <= set(all_text)
    green, red = count_colour(pixels, viz.CORRECT_COLOUR), count_colour(pixels, viz.WRONG_COLOUR)
    assert green > 0 and red > 0 and 1.5 < green / red < 3.5  # 7 green cells against 3 red ones
    png(viz.softmax_table(np.full((2, 16, 16), 0.3), probs[:2], [0, 1], CLASSES, tmp_path / "g.png", "grey"))


def test_softmax_table_validates(tmp_path):
    imgs, probs = np.zeros((3, 3, 8, 8)), np.full((3, 4), 0.25)
    cases = [((imgs, np.full((3, 5), 0.2), [0, 1, 2], CLASSES), r"probs must be \(N, K\) with K = len\(classes\) = 4; "
              r"got shape \(3, 5\)"),
             ((imgs, probs[0], [0], CLASSES), r"got shape \(4,\)"),
             ((imgs, probs, [0, 1], CLASSES), "expected 3 entries .* labels has 2"),
             ((imgs[:2], probs, [0, 1, 2], CLASSES), "expected 2 entries .* probs has 3"),
             ((imgs, probs, [0, 1, 4], CLASSES), r"labels must be in \[0, 4\)"),
             ((imgs, probs, ["cat", "car", "bird"], CLASSES), "labels must be a 1-D sequence of class indices"),
             ((np.zeros((3, 8)), probs, [0, 1, 2], CLASSES), "expected images of shape")]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            viz.softmax_table(*args, tmp_path / "x.png", "t")


# -- feature_maps and filters --------------------------------------------------------------------

def test_feature_maps(tmp_path, figures):
    rng = np.random.default_rng(4)
    maps = [("conv1", rng.random((6, 16, 16))), ("relu2", np.maximum(rng.normal(size=(1, 20, 8, 8)), 0))]
    maps[1][1][0, 3] = 0.0  # a dead channel
    p = viz.feature_maps(maps, tmp_path / "f.png", "activations", image=rng.random((16, 16, 3)))
    png(p, 500, 400)
    fig = figures[-1]
    heads = [sub.get_suptitle() for sub in fig.subfigs]
    assert heads == ["", "conv1: 6 channels, 16 x 16", "relu2: first 16 of 20 channels, 8 x 8"]
    assert "ch 5" in texts(fig) and "ch 3 (const 0)" in texts(fig) and "ch 16" not in texts(fig)
    assert "input image" in texts(fig)
    png(viz.feature_maps(maps[:1], tmp_path / "g.png", "no image", max_channels=4))
    assert "first 4 of 6" in figures[-1].subfigs[0].get_suptitle()


def test_feature_maps_validates(tmp_path):
    with pytest.raises(ValueError, match=r"maps for layer 'fc' must be \(C, H, W\).*got shape \(10,\)"):
        viz.feature_maps([("fc", np.ones(10))], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match="maps is empty"):
        viz.feature_maps([], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match=r"maps\[0\] should be a \(layer_name, array\) pair"):
        viz.feature_maps([np.ones((2, 3, 3))], tmp_path / "x.png", "t")


def test_filters(tmp_path, figures):
    rng = np.random.default_rng(5)
    png(viz.filters(rng.normal(size=(16, 3, 5, 5)), tmp_path / "rgb.png", "conv1 filters"), 400, 150)
    assert figures[-1].get_suptitle().startswith("conv1 filters\n16 x 3 x 5 x 5 weights")
    assert "filter 15" in texts(figures[-1])
    png(viz.filters(FakeDeviceArray(rng.normal(size=(32, 16, 3, 3))), tmp_path / "g.png", "conv2"))
    title = figures[-1].get_suptitle()
    assert "(first 8 of 32 output x 8 of 16 input channels)" in title
    assert len([ax for ax in figures[-1].axes if ax.axison]) == viz.MAX_FILTER_IMAGES
    png(viz.filters(rng.normal(size=(6, 1, 5, 5)), tmp_path / "mnist.png", "lenet conv1"))
    assert "first" not in figures[-1].get_suptitle() and "filter 5" in texts(figures[-1])


def test_signed_display_keeps_zero_grey():
    w = np.array([[-2.0, 0.0, 1.0]])
    np.testing.assert_allclose(viz.signed_display(w), [[0.0, 0.5, 0.75]])
    with pytest.raises(ValueError, match=r"expected conv weights of shape \(C_out, C_in, kh, kw\)"):
        viz.filters(np.ones((3, 3, 3)), "unused.png", "t")
