"""One pass over an evaluation set: loss, accuracy, per-class accuracy and confusion matrix."""

from __future__ import annotations

import numpy as np

from minicnn import backend

from .objectives import Objective


def evaluate(model, objective: Objective, loader, num_classes: int, should_stop=None, step=None) -> dict:
    """Loss, accuracy, per-class accuracy and confusion matrix over one pass of ``loader``.

    The model runs in eval mode (restored afterwards). Losses are per-sample
    means (each batch's mean weighted by its size); the objective's parts
    (e.g. ``ce``, ``mse``) are averaged the same way.
    ``confusion_matrix[t][p]`` counts images of true class ``t`` predicted as
    ``p``; a class with no images has per-class accuracy ``None``.
    ``should_stop()``, checked after each batch, turns into a ``KeyboardInterrupt``
    (the trainer's Ctrl-C). ``step(x, y) -> (loss, logits, parts)`` replaces
    ``objective.forward(model, x, y)`` per batch, e.g. a
    :class:`minicnn.cuda_graph.GraphedEvalStep` replaying it from a CUDA graph.
    """
    was_training = model.training
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    loss_sum, n = 0.0, 0
    parts_sum = {k: 0.0 for k in objective.part_names}
    try:
        for x, y in loader.iter_epoch(0):
            loss, logits, parts = step(x, y) if step is not None else objective.forward(model, x, y)
            b = int(y.shape[0])
            loss_sum += float(loss) * b
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * b
            cm += confusion_counts(logits, y, num_classes)
            n += b
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    counts = cm.sum(axis=1)
    per_class = [float(cm[k, k] / counts[k]) if counts[k] else None for k in range(num_classes)]
    out = {"n": n, "loss": loss_sum / n, "accuracy": float(np.trace(cm) / n)}
    out.update({k: v / n for k, v in parts_sum.items()})
    out["per_class_accuracy"] = per_class
    out["confusion_matrix"] = cm.tolist()
    return out


def confusion_counts(logits, y, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 host counts: ``[t, p]`` = images of class ``t``
    (labels ``y`` (N,)) whose highest score in ``logits`` (N, num_classes) is class ``p``."""
    pred = backend.to_numpy(logits.argmax(axis=1))
    flat = backend.to_numpy(y) * num_classes + pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
