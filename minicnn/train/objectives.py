"""What one batch means to the training loop: a loss from a forward pass, gradients from a backward pass.

The loop (:class:`minicnn.train.Trainer`) and :func:`minicnn.train.evaluate`
know nothing about a particular model; an :class:`Objective` turns a batch
into a loss and the parameters' gradients. So the single-output classifier
(:class:`Classification`) and the two-output DeconvNet
(:class:`ClassificationReconstruction`, CE + lambda * MSE) share one loop.
"""

from __future__ import annotations

import math

from minicnn import nn


class Objective:
    """Turns a batch into a loss (forward) and parameter gradients (backward).

    ``forward(model, x, y)`` with ``x`` the input batch ``(N, C, H, W)`` and
    ``y`` the labels ``(N,)`` returns ``(loss, logits, parts)``: the scalar to
    minimise (a 0-d backend array), the class scores ``(N, num_classes)`` used
    for accuracy, and a dict of named 0-d loss terms that are logged as well
    (may be empty; their names are ``part_names``). The losses cache what
    their backward needs, so ``backward(model)`` takes no batch: it adds the
    last forward's gradients to each parameter's ``.grad`` (``grad += g``,
    created when None; the loop sets them to None before).

    ``loss_label``: what the loss is, when it is not the tutorial's plain
    cross-entropy (e.g. ``"CE + 0.5 * MSE"``); the loop's console lines carry it.
    """

    part_names: tuple[str, ...] = ()
    loss_label: str = ""

    def forward(self, model, x, y):
        raise NotImplementedError

    def backward(self, model) -> None:
        raise NotImplementedError


class Classification(Objective):
    """``loss = CrossEntropy(model(x), y)`` for a single-output classifier."""

    def __init__(self):
        self.ce = nn.CrossEntropyLoss()

    def forward(self, model, x, y):
        logits = model(x)
        return self.ce(logits, y), logits, {}

    def backward(self, model) -> None:
        model.backward(self.ce.backward())


class ClassificationReconstruction(Objective):
    """``loss = CE(logits, y) + lam * MSE(x_hat, x)`` for a model returning ``(logits, x_hat)``.

    ``x_hat`` has the input's shape ``(N, C, H, W)``; the parts logged are
    ``ce`` and ``mse`` (the MSE before weighting).
    """

    part_names = ("ce", "mse")

    def __init__(self, lam: float = 1.0):
        if not math.isfinite(lam) or lam < 0:
            raise ValueError(f"ClassificationReconstruction: lam must be a finite number >= 0, got {lam}")
        self.lam = float(lam)
        self.loss_label = f"CE + {self.lam:g} * MSE"
        self.ce = nn.CrossEntropyLoss()
        self.mse = nn.MSELoss()

    def forward(self, model, x, y):
        logits, x_hat = model(x)
        ce = self.ce(logits, y)
        mse = self.mse(x_hat, x)
        return ce + self.lam * mse, logits, {"ce": ce, "mse": mse}

    def backward(self, model) -> None:
        model.backward(self.ce.backward(), self.mse.backward(self.lam))
