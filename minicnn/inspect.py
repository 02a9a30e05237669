"""Seeing inside a trained classifier, on the layers' own forward and backward.

Every method below needs only what the engine already has (DESIGN-NOTES,
"Inspection and visualisation"): run forward up to a named layer, start the
backward pass at any layer with any seed gradient, and a ReLU whose backward
rule is selectable (``"normal"``, ``"deconvnet"``, ``"guided"``).

* :func:`top_activations`, :func:`deconv_projection` -- Zeiler & Fergus,
  "Visualizing and Understanding Convolutional Networks", ECCV 2014;
* :func:`saliency` -- Simonyan, Vedaldi & Zisserman, "Deep Inside
  Convolutional Networks", ICLR workshop 2014;
* :func:`guided_backprop` -- Springenberg et al., "Striving for Simplicity:
  The All Convolutional Net", ICLR workshop 2015;
* :func:`grad_cam` -- Selvaraju et al., "Grad-CAM", ICCV 2017 (a
  generalisation of CAM, Zhou et al., CVPR 2016);
* :func:`occlusion` -- Zeiler & Fergus 2014, Figure 7;
* :func:`activation_maximisation` -- Erhan et al. 2009, Simonyan et al.
  2014, with the regularisers of Yosinski et al., "Understanding Neural
  Networks Through Deep Visualization", 2015.

Images ``x`` are ``(N, C, H, W)`` arrays of the active backend, on the
network's (normalised) input scale. Each method sets eval mode, its ReLU rule
and d/d input, and restores them when it ends (:func:`inspecting`).
"""

from __future__ import annotations

import contextlib

import numpy as np

from minicnn import backend, nn
from minicnn.models import DeconvNet

#: DeconvNet's path from the input to the logits: its encoder, then its head (the decoder is a fork off it).
DECONVNET_CLASSIFIER = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                        "flatten", "fc1", "relu3", "fc2", "relu4", "fc3")


# --- the classifier as a chain of named layers -------------------------------

def layers(model) -> list:
    """The classifier as ``[(name, module), ...]`` from the input to the logits."""
    if isinstance(model, DeconvNet):  # a hand-written fork: name its classifier path explicitly
        return [(name, getattr(model, name)) for name in DECONVNET_CLASSIFIER]
    if isinstance(model, nn.Sequential):
        return list(model.named_children())
    raise TypeError(f"minicnn.inspect: expected a Sequential classifier or a DeconvNet, got {type(model).__name__}")


def layer_index(model, name: str) -> int:
    """Position of layer ``name`` in :func:`layers`; a ValueError lists the valid names."""
    names = [n for n, _ in layers(model)]
    if name not in names:
        raise ValueError(f"unknown layer {name!r}; the layers of {type(model).__name__} are: {', '.join(names)}")
    return names.index(name)


def _convolves(module) -> bool:  # a Conv2d, or a block (a ResNet stage) holding one
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def conv_layers(model) -> list[str]:
    """Names of the layers that convolve (a Conv2d, or a block holding one), input side first."""
    return [n for n, m in layers(model) if _convolves(m)]


def default_cam_layer(model) -> str:
    """Grad-CAM's usual layer: the last conv layer's rectified output (its ReLU, if one follows)."""
    chain = layers(model)
    i = max(k for k, (_, m) in enumerate(chain) if _convolves(m))
    if i + 1 < len(chain) and isinstance(chain[i + 1][1], nn.ReLU):
        i += 1
    return chain[i][0]


def _run(module, x):
    y = module(x)
    return y[0] if isinstance(y, tuple) else y  # DeconvNet's pools also return their switches


def forward_to(model, x, layer: str | None = None):
    """x (N, C, H, W) -> the output of ``layer`` (the logits (N, K) when None)."""
    if layer is not None:
        layer_index(model, layer)  # an unknown name fails before any work
    for name, m in layers(model):
        x = _run(m, x)
        if name == layer:
            break
    return x


def forward_from(model, a, layer: str):
    """The output ``a`` of ``layer`` -> the logits (runs the layers after it)."""
    for _, m in layers(model)[layer_index(model, layer) + 1:]:
        a = _run(m, a)
    return a


def backward_between(model, grad, top: str | None = None, bottom: str | None = None):
    """A seed gradient at the output of ``top`` (the logits when None) -> the gradient
    at the output of ``bottom`` (at the input x (N, C, H, W) when None).

    Runs each layer's own backward, in reverse; the forward pass that made these
    activations must come just before (the layers keep their caches).
    """
    chain = layers(model)
    hi = len(chain) if top is None else layer_index(model, top) + 1
    lo = 0 if bottom is None else layer_index(model, bottom) + 1
    for _, m in reversed(chain[lo:hi]):
        grad = m.backward(grad)
    return grad


@contextlib.contextmanager
def inspecting(model, rule: str = "normal"):
    """Eval mode, every ReLU's backward rule set to ``rule``, d/d input switched on and the
    weights' gradients untouched; everything is restored on exit, after an error too."""
    if rule not in nn.ReLU.MODES:
        raise ValueError(f"ReLU rule must be one of {nn.ReLU.MODES}, got {rule!r}")
    modules = list(model.modules())
    training = [m.training for m in modules]
    relus = [m for m in modules if isinstance(m, nn.ReLU)]
    rules = [m.backward_mode for m in relus]
    needs_dx = model.input_layer().needs_input_grad
    params = list(model.parameters())
    grads = [(p.grad, p.requires_grad) for p in params]
    try:
        model.eval()
        for m in relus:
            m.backward_mode = rule
        model.requires_input_grad_(True)  # the input layer must compute d/d x
        for p in params:  # these passes must not add into a trained model's .grad
            p.grad, p.requires_grad = None, False
        yield model
    finally:
        for m, t in zip(modules, training):
            object.__setattr__(m, "training", t)
        for m, r in zip(relus, rules):
            m.backward_mode = r
        model.requires_input_grad_(needs_dx)
        for p, (g, r) in zip(params, grads):
            p.grad, p.requires_grad = g, r


def _unit_seed(out, index):
    """A seed that picks ``out[n, index[n]]`` (an int ``index``: for every n): one-hot for (N, K)
    outputs; for (N, C, h, w) maps 1/(h*w) over channel index[n], the gradient of its spatial mean."""
    xp = backend.current().xp
    seed = xp.zeros(out.shape, dtype=out.dtype)
    index = xp.asarray(np.broadcast_to(np.asarray(index, dtype=np.int64), (len(out),)))
    seed[xp.arange(len(out)), index] = 1.0 / int(np.prod(out.shape[2:]))
    return seed


def softmax(logits):
    """(N, K) logits -> class probabilities (shifted by the row maximum so exp cannot overflow)."""
    xp = backend.current().xp
    e = xp.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def probabilities(model, x):
    """x (N, C, H, W) -> softmax probabilities (N, K), in eval mode."""
    with inspecting(model):
        return softmax(forward_to(model, x))


# --- gradients with respect to the input --------------------------------------

def input_gradient(model, x, target, rule: str = "normal"):
    """d logits[n, target[n]] / d x (N, C, H, W), with the ReLUs' backward ``rule``."""
    with inspecting(model, rule):
        logits = forward_to(model, x)
        return backward_between(model, _unit_seed(logits, target))


def saliency(model, x, target):
    """Gradient saliency (Simonyan et al. 2014): d score_c / d x, (N, C, H, W).

    The score is the class logit (before the softmax). The usual picture is
    the maximum over colour channels of its absolute value.
    """
    return input_gradient(model, x, target, "normal")


def guided_backprop(model, x, target):
    """Guided backpropagation (Springenberg et al. 2015), (N, C, H, W): at each ReLU only
    positive gradients pass (the deconvnet rule) and only where the forward input was positive."""
    return input_gradient(model, x, target, "guided")


def grad_cam(model, x, target, layer: str | None = None):
    """Grad-CAM (Selvaraju et al. 2017): (N, h, w) maps on ``layer``'s output grid.

    With A (N, K, h, w) the layer's output and y_c the class score,
    alpha_k = mean over (h, w) of d y_c / d A_k, and the map is
    ReLU(sum_k alpha_k A_k). ``layer`` defaults to :func:`default_cam_layer`.
    Use :func:`upsample` to lay it over the image.
    """
    xp = backend.current().xp
    layer = layer or default_cam_layer(model)
    with inspecting(model):
        a = forward_to(model, x, layer)
        logits = forward_from(model, a, layer)
        g = backward_between(model, _unit_seed(logits, target), bottom=layer)
    alpha = g.mean(axis=(2, 3), keepdims=True)  # how much each channel matters for class c
    return xp.maximum((alpha * a).sum(axis=1), 0)


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights of linear interpolation with half-pixel centres (PyTorch's
    ``align_corners=False``): row i mixes the two inputs nearest to (i + 0.5) n_in / n_out - 0.5."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1 - (src - lo))
    np.add.at(m, (np.arange(n_out), hi), src - lo)
    return m


def upsample(maps, size):
    """Bilinear resize (N, h, w) -> (N, H, W), ``size`` = (H, W): one matrix product per axis."""
    xp = backend.current().xp
    ry = xp.asarray(_bilinear_matrix(size[0], maps.shape[1]), dtype=maps.dtype)
    rx = xp.asarray(_bilinear_matrix(size[1], maps.shape[2]), dtype=maps.dtype)
    return ry @ maps @ rx.T


# --- occlusion ------------------------------------------------------------------

def occlusion(model, image, size: int = 8, stride: int = 4, fill: float = 0.0, batch_size: int = 256):
    """Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7) of one image (C, H, W).

    A ``size`` x ``size`` square of value ``fill`` (0: mid-grey after the
    tasks' Normalize(0.5, 0.5)) slides over the image in steps of ``stride``;
    returns the class probabilities (rows, cols, K) with the square's top-left
    corner at (row * stride, col * stride): ``p[..., true_class]`` is the
    paper's map (d), ``p.argmax(-1)`` its map (e).
    """
    xp = backend.current().xp
    _, h, w = image.shape
    ys, xs = range(0, h - size + 1, stride), range(0, w - size + 1, stride)
    spots = [(y, x) for y in ys for x in xs]
    probs = []
    with inspecting(model):
        for i in range(0, len(spots), batch_size):
            chunk = spots[i:i + batch_size]
            batch = xp.repeat(image[None], len(chunk), axis=0)  # copies: the image itself stays intact
            for k, (y, x) in enumerate(chunk):
                batch[k, :, y:y + size, x:x + size] = fill
            probs.append(softmax(forward_to(model, batch)))
    return xp.concatenate(probs).reshape(len(ys), len(xs), -1)


# --- activation maximisation ---------------------------------------------------

def gaussian_blur(x, sigma: float):
    """x (N, C, H, W) blurred per channel by a separable Gaussian (radius 2 sigma, edges repeated)."""
    xp = backend.current().xp
    r = max(1, int(round(2 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    h, w = x.shape[2:]
    p = xp.pad(x, ((0, 0), (0, 0), (r, r), (0, 0)), mode="edge")
    x = sum(float(k[i]) * p[:, :, i:i + h] for i in range(2 * r + 1))
    p = xp.pad(x, ((0, 0), (0, 0), (0, 0), (r, r)), mode="edge")
    return sum(float(k[i]) * p[:, :, :, i:i + w] for i in range(2 * r + 1))


def activation_maximisation(model, shape, targets, layer: str | None = None, steps: int = 200, lr: float = 0.05,
                            l2: float = 1e-3, jitter: int = 0, blur_every: int = 0, blur_sigma: float = 0.5,
                            clip=None, seed: int = 0):
    """Synthesise inputs that maximise a unit (Erhan et al. 2009; regularisers: Yosinski et al. 2015).

    Image n (of ``len(targets)``, each ``shape`` = (C, H, W)) maximises
    f_n(x) = the spatial mean of channel ``targets[n]`` of ``layer``'s output,
    or with ``layer=None`` the class score logits[targets[n]]. Gradient ascent
    on J = f - l2/2 ||x||^2 (L2 decay), each step scaled by the gradient's mean
    size; ``jitter`` shifts the image by up to that many pixels before each
    step, every ``blur_every`` steps a Gaussian blur smooths it, ``clip`` =
    (lo, hi) keeps it in range. Returns (x (N, C, H, W), J per step
    (steps + 1, N) host array, J of the start first).
    """
    be = backend.current()
    xp = be.xp
    rng = np.random.default_rng(seed)
    dtype = next(iter(model.parameters())).data.dtype
    x = be.asarray(0.1 * rng.standard_normal((len(targets), *shape)), dtype=dtype)
    history = []
    with inspecting(model):
        for step in range(steps + 1):
            dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
            out = forward_to(model, xp.roll(x, (dy, dx), axis=(2, 3)), layer)
            unit = _unit_seed(out, targets)
            f = (out * unit).reshape(len(x), -1).sum(axis=1)
            history.append(backend.to_numpy(f - 0.5 * l2 * (x * x).reshape(len(x), -1).sum(axis=1)))
            if step == steps:
                break
            g = xp.roll(backward_between(model, unit, top=layer), (-dy, -dx), axis=(2, 3)) - l2 * x  # dJ/dx
            x = x + lr * g / (xp.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-12)
            if blur_every and (step + 1) % blur_every == 0:
                x = gaussian_blur(x, blur_sigma).astype(dtype, copy=False)
            if clip is not None:
                x = xp.clip(x, *clip)
    return x, np.stack(history)


# --- deconvnet projections -------------------------------------------------------

def top_activations(model, images, layer: str, k: int = 9, batch_size: int = 500, prepare=None) -> dict:
    """Zeiler & Fergus's search: per channel of ``layer``, the ``k`` images whose strongest
    activation in that channel is largest.

    ``images``: (N, C, H, W) host array (a dataset's uint8 images);
    ``prepare``: host batch -> network input (default: ``backend.asarray``).
    Returns ``{"values", "indices", "where"}``, each (channels, k), best first:
    the activation, the image index, the flat position in the layer's map;
    and ``"map_shape"``, the map's (h, w) (empty for a vector layer).
    """
    prepare = prepare or backend.asarray
    peaks, where, map_shape = [], [], ()
    with inspecting(model):
        for i in range(0, len(images), batch_size):
            a = forward_to(model, prepare(images[i:i + batch_size]), layer)
            map_shape = tuple(a.shape[2:])
            a = a.reshape(a.shape[0], a.shape[1], -1)
            peaks.append(backend.to_numpy(a.max(axis=2)))
            where.append(backend.to_numpy(a.argmax(axis=2)))
    peaks, where = np.concatenate(peaks).T, np.concatenate(where).T  # (channels, N)
    order = np.argsort(-peaks, axis=1, kind="stable")[:, :k]
    return {"values": np.take_along_axis(peaks, order, 1), "indices": order,
            "where": np.take_along_axis(where, order, 1), "map_shape": map_shape}


def project(model, x, layer: str, seed):
    """The deconvnet (Zeiler & Fergus 2014, Sec. 2.1) from ``layer`` down to pixels.

    ``seed`` (shaped like the layer's output for x) runs down the trained
    net's own backward: MaxPool2d.backward unpools with the forward pass's
    switches, ReLU's "deconvnet" rule rectifies, Conv2d.backward's dx filters
    with the transposed weights. Returns (N, C, H, W).
    """
    with inspecting(model, "deconvnet"):
        forward_to(model, x, layer)  # records the switches
        return backward_between(model, seed, top=layer)


def deconv_projection(model, x, layer: str, channel: int, where=None):
    """Each image's strongest activation of ``channel`` at ``layer``, alone (all other
    activations of the layer zeroed), projected to pixels by :func:`project`.

    x (N, C, H, W); ``where`` (N,): flat positions in the layer's map to keep
    instead of each image's maximum. Returns (N, C, H, W).
    """
    xp = backend.current().xp
    with inspecting(model):
        a = forward_to(model, x, layer)
    flat = a.reshape(len(a), a.shape[1], -1)
    pos = flat[:, channel].argmax(axis=1) if where is None else xp.asarray(where)
    rows = xp.arange(len(a))
    seed = xp.zeros(flat.shape, dtype=a.dtype)
    seed[rows, channel, pos] = flat[rows, channel, pos]
    return project(model, x, layer, seed.reshape(a.shape))


def _windows(module):
    """The sliding windows ((kh, kw), (sh, sw), (ph, pw)) ``module`` applies, input side first;
    None when an output sees the whole input (Linear, Flatten, a global or adaptive pool).
    In a residual block only the main path counts (its shortcut sees less)."""
    if isinstance(module, (nn.Linear, nn.Flatten)) or hasattr(module, "output_size"):
        return None
    if hasattr(module, "kernel_size") and hasattr(module, "stride"):  # convolutions and pools
        return [(module.kernel_size, module.stride, module.padding)]
    found = []
    for name, child in module.named_children():
        w = [] if name == "shortcut" else _windows(child)
        if w is None:
            return None
        found += w
    return found


def receptive_field(model, layer: str, pos, hw) -> tuple[int, int, int, int]:
    """The input window (y0, y1, x0, x1), half-open and clipped to ``hw`` = (H, W),
    that position ``pos`` = (y, x) of ``layer``'s output map sees."""
    windows = []
    for _, m in layers(model)[:layer_index(model, layer) + 1]:
        w = _windows(m)
        if w is None:
            return 0, hw[0], 0, hw[1]  # a fully connected unit sees the whole image
        windows += w
    (y0, y1), (x0, x1) = (pos[0], pos[0]), (pos[1], pos[1])  # inclusive bounds, walked down window by window
    for (kh, kw), (sh, sw), (ph, pw) in reversed(windows):
        y0, y1 = y0 * sh - ph, y1 * sh - ph + kh - 1
        x0, x1 = x0 * sw - pw, x1 * sw - pw + kw - 1
    return max(y0, 0), min(y1 + 1, hw[0]), max(x0, 0), min(x1 + 1, hw[1])
