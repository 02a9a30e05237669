"""The figures every report run draws (one helper for all four report experiments).

:func:`report_figures` writes, into a run's folder:

* ``learning_curves.png``  -- loss and accuracy per epoch, training and evaluation, best epoch marked;
* ``weight_histograms.png`` -- every parameter of every layer;
* ``correct.png``, ``wrong.png`` -- test images the network classified rightly / wrongly (true and predicted);
* ``feature_maps.png``     -- the output of every conv layer for one test image;
* ``filters.png``          -- the first conv layer's weights;
* ``confusion_matrix.png`` -- on the test set;
* ``softmax_table.png``    -- softmax probabilities of 10 evaluation-set images (the validation set's,
  or the test set's with ``--val-size 0``).

:func:`comparison` draws a set of runs side by side (``OUT/<task>/comparison.png``).
Images are the datasets' uint8 ``(N, C, H, W)``; the network sees ``run.eval_tf`` of them.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import minicnn as mc
from minicnn import inspect, viz
from minicnn.atomic import atomic_write

N_GRID = 16      # images in each of the correct / wrong grids
N_SOFTMAX = 10   # rows of the softmax table


def probabilities(model, images, tf, batch_size: int = 500) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` (host) of uint8 ``images`` after the transform ``tf``, in eval mode."""
    out = []
    with inspect.inspecting(model):
        for start in range(0, len(images), batch_size):
            x = mc.asarray(tf(np.asarray(images[start:start + batch_size])))
            out.append(mc.to_numpy(inspect.softmax(inspect.forward_to(model, x))))
    return np.concatenate(out) if out else np.zeros((0, 0))


def display(images) -> np.ndarray:
    """uint8 images -> the [0, 1] display scale."""
    return np.asarray(images, dtype=np.float32) / 255.0


def classified_examples(model, ds, tf, n: int = N_GRID, batch_size: int = 500):
    """The first ``n`` rightly and the first ``n`` wrongly classified images of ``ds``, in order,
    as two lists of (index, predicted class); stops reading once both are full."""
    right, wrong = [], []
    for start in range(0, len(ds), batch_size):
        pred = probabilities(model, ds.images[start:start + batch_size], tf, batch_size).argmax(axis=1)
        for i, p in enumerate(pred, start):
            (right if p == ds.labels[i] else wrong).append((i, int(p)))
        if len(right) >= n and len(wrong) >= n:
            break
    return right[:n], wrong[:n]


def grids(model, ds, tf, classes, out, name: str) -> dict:
    """``correct.png`` and ``wrong.png`` of the test set ``ds``."""
    right, wrong = classified_examples(model, ds, tf)
    for key, picks, what in (("correct", right, "correctly"), ("wrong", wrong, "wrongly")):
        idx = [i for i, _ in picks]
        viz.classified_grid(display(ds.images[idx]), [classes[ds.labels[i]] for i in idx],
                            [classes[p] for _, p in picks], out / f"{key}.png",
                            f"{name}: the first {len(idx)} {what} classified test images (true / predicted)")
    return {"correct": "correct.png", "wrong": "wrong.png"}


def conv_feature_maps(model, image, tf) -> list:
    """[(layer, (C, H, W) output)] of every conv layer for one uint8 image ``(C, H, W)``."""
    x = mc.asarray(tf(np.asarray(image)[None]))
    with inspect.inspecting(model):
        return [(layer, mc.to_numpy(inspect.forward_to(model, x, layer))[0]) for layer in inspect.conv_layers(model)]


def first_conv_weight(model):
    return getattr(model, inspect.conv_layers(model)[0]).weight


def softmax_figure(model, ds, tf, classes, path, title: str, n: int = N_SOFTMAX):
    """The softmax table of the first ``n`` images of ``ds`` seen through ``tf``."""
    k = min(n, len(ds))
    probs = probabilities(model, ds.images[:k], tf)
    return viz.softmax_table(display(ds.images[:k]), probs, ds.labels[:k], classes, path, title)


def report_figures(model, trainer, run, splits, test_eval: dict, out, tested: str) -> dict:
    """Every figure of the module docstring for a trained ``run`` whose model holds the ``tested``
    ("best" or "last") weights; ``{figure: file name}`` (relative to ``out``)."""
    name, classes, eval_name = run.label, splits.classes, splits.eval_name
    best = (trainer.best or {}).get("epoch")
    viz.learning_curves(trainer.history, out / "learning_curves.png",
                        f"{name}: loss and accuracy per epoch" + (f" (best {eval_name} epoch {best})" if best else ""),
                        eval_name, best_epoch=best)
    viz.weight_histograms(model.named_parameters(), out / "weight_histograms.png",
                          f"{name}: parameters of every layer ({tested} weights)")
    figs = {"learning_curves": "learning_curves.png", "weight_histograms": "weight_histograms.png"}
    figs.update(grids(model, splits.test, run.eval_tf, classes, out, name))
    image = splits.test.images[0]
    viz.feature_maps(conv_feature_maps(model, image, run.eval_tf), out / "feature_maps.png",
                     f"{name}: every conv layer's output for test image #0 ({classes[splits.test.labels[0]]})",
                     image=display(image))
    viz.filters(first_conv_weight(model), out / "filters.png", f"{name}: the first conv layer's filters")
    viz.confusion_matrix(test_eval["confusion_matrix"], classes, out / "confusion_matrix.png",
                         f"{name}: confusion matrix ({test_eval['n']} test images, "
                         f"accuracy {100 * test_eval['accuracy']:.2f} %)")
    softmax_figure(model, splits.eval_set, run.eval_tf, classes, out / "softmax_table.png",
                   f"{name}: softmax probabilities of the first {N_SOFTMAX} {eval_name} images")
    figs.update({"feature_maps": "feature_maps.png", "filters": "filters.png",
                 "confusion_matrix": "confusion_matrix.png", "softmax_table": "softmax_table.png"})
    return figs


def comparison(results: dict, path, title: str, eval_name: str):
    """Left: each run's evaluation accuracy per epoch (its best epoch starred; the test accuracy
    per epoch dashed, where measured). Right: each run's test accuracy, beside the report's
    number where it gives one."""
    fig = Figure(figsize=(11.0, 4.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    curves, bars = fig.subplots(1, 2)
    for k, res in enumerate(results.values()):
        rows = [e for e in res["epochs"] if e.get("eval_accuracy") is not None]
        curves.plot([e["epoch"] for e in rows], [100 * e["eval_accuracy"] for e in rows], marker="o", ms=3,
                    color=f"C{k}", label=f"{res['label']} ({eval_name})")
        tested = [e for e in res["epochs"] if e.get("test_accuracy") is not None]
        if tested:
            curves.plot([e["epoch"] for e in tested], [100 * e["test_accuracy"] for e in tested], ls="--",
                        color=f"C{k}", label=f"{res['label']} (test)")
        best = res.get("best") or {}
        if best:
            curves.plot([best["epoch"]], [100 * best["accuracy"]], marker="*", ms=13, color=f"C{k}")
    last = max((len(res["epochs"]) for res in results.values()), default=1)
    curves.set_xlim(0.5, max(last, 1) + 0.5)
    curves.set_xlabel("epoch")
    curves.set_ylabel("accuracy (%)")
    curves.set_title(f"{eval_name} accuracy per epoch (star: best epoch)")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7)
    names = list(results)
    x = np.arange(len(names))
    ours = [100 * results[n]["test_accuracy"] for n in names]
    refs = [results[n].get("reference") for n in names]
    width = 0.4 if any(r is not None for r in refs) else 0.6
    shift = width / 2 if width == 0.4 else 0.0
    bars.bar(x - shift, ours, width=width, label="minicnn", color="C0")
    for xi, v in zip(x, ours):
        bars.text(xi - shift, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    if shift:
        bars.bar(x + shift, [100 * r if r is not None else 0 for r in refs], width=width, label="the report",
                 color="C7")
        bars.legend(fontsize=8, loc="lower right")
    bars.set_xticks(x, [results[n]["label"] for n in names], rotation=20, ha="right", fontsize=8)
    bars.set_ylabel("test accuracy (%)")
    bars.set_title("test accuracy of each run")
    bars.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100, facecolor="white")
    return path
