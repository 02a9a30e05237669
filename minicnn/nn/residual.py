"""Residual blocks: a fork and a merge, with the backward written out by hand.

He et al. (2016)'s basic block adds its input back to what two 3x3
convolutions make of it::

    x ──┬── conv1 ─ bn1 ─ relu ─ conv2 ─ bn2 ──(+)── relu ── out
        │         (the main path F(x))          │
        └──────────── shortcut(x) ──────────────┘

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))

Backward. The merge is a sum, so the gradient arriving at it goes unchanged
into both addends; the fork (x feeds both paths) is where the two paths'
gradients meet again, and there they add::

    d_sum = relu.backward(dout)
    dx    = main.backward(d_sum) + shortcut.backward(d_sum)

That is how any module with a fork and a merge is written (DeconvNet in
``minicnn.models`` does the same at its shared latent): run each branch's
backward from the gradient of its own output, each branch in the reverse
order of its forward, and add the gradients where the branches started.
Chains stay ``nn.Sequential``; only the fork needs a hand-written
``backward``.

Shortcuts, when the block changes the shape (stride 2 and more channels):

* identity -- same shape (stride 1, in == out channels): shortcut(x) = x;
* ``"A"``  -- He et al.'s CIFAR option, PyTorch-style: subsample
  ``x[:, :, ::s, ::s]`` and put it between zero channels (half of the new
  channels before, half after); no parameters (:class:`ZeroPadShortcut`);
* ``"B"``  -- a projection: 1x1 convolution with stride s (no bias) + BatchNorm2d.
"""

from __future__ import annotations

from collections import OrderedDict

from minicnn import backend, fusion
from minicnn.nn._checks import check_input
from minicnn.nn.activation import ReLU
from minicnn.nn.conv import Conv2d
from minicnn.nn.module import Identity, Module, Sequential
from minicnn.nn.norm import BatchNorm2d

SHORTCUTS = ("A", "B")


# --- option A: subsample and pad the channels with zeros ------------------------

def zero_pad_shortcut_forward(x, stride, out_channels):
    """out (N, C_out, ceil(H/s), ceil(W/s)): channels [front, front + C) hold
    x[:, :, ::s, ::s], the others are zero; front = (C_out - C) // 2.

    cache: (x shape, stride, front).
    """
    xp = backend.current().xp
    n, c = x.shape[:2]
    front = (out_channels - c) // 2
    sub = x[:, :, ::stride, ::stride]
    out = xp.zeros((n, out_channels) + tuple(sub.shape[2:]), dtype=x.dtype)
    out[:, front:front + c] = sub
    return out, (x.shape, stride, front)


def zero_pad_shortcut_backward(dout, cache):
    """dx (N, C, H, W): dout's middle channels back at the kept pixels; zero at
    the pixels the subsampling skipped (the zero channels took nothing from x)."""
    xp = backend.current().xp
    (n, c, h, w), s, front = cache
    dx = xp.zeros((n, c, h, w), dtype=dout.dtype)
    dx[:, :, ::s, ::s] = dout[:, front:front + c]
    return dx


class ZeroPadShortcut(Module):
    """He et al.'s option A: x (N, C_in, H, W) -> (N, C_out, ceil(H/s), ceil(W/s)),
    x[:, :, ::s, ::s] with (C_out - C_in) zero channels around it (PyTorch's
    ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))``). No parameters; caches the input shape."""

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = int(in_channels), int(out_channels), int(stride)
        if self.out_channels < self.in_channels or self.stride < 1:
            raise ValueError(f"ZeroPadShortcut: needs out_channels >= in_channels and stride >= 1, got "
                             f"{in_channels} -> {out_channels}, stride {stride}")
        self._cache = None

    def forward(self, x):
        check_input(self, x, (4,), self.in_channels)
        out, self._cache = zero_pad_shortcut_forward(x, self.stride, self.out_channels)
        return out

    def backward(self, dout):
        return zero_pad_shortcut_backward(dout, self._need_cache(self._cache))

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def make_shortcut(in_channels, out_channels, stride, kind="A") -> Module:
    """Identity when the shape is kept; else option ``"A"`` (zero padding) or ``"B"`` (1x1 conv + BN)."""
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {kind!r}")
    if stride == 1 and in_channels == out_channels:
        return Identity()
    if kind == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return Sequential(OrderedDict(
        conv=Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        bn=BatchNorm2d(out_channels),
    ))


# --- the basic block ---------------------------------------------------------------

class BasicBlock(Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), He et al.'s basic block.

    x (N, C_in, H, W) -> (N, C_out, OH, OW), OH = ceil(H / stride) (3x3 convs,
    padding 1, no bias; conv1 carries the stride). ``shortcut``: ``"A"`` or
    ``"B"``, used only when the shape changes (else identity). Each layer caches
    what its own backward needs; the block adds nothing. The merge, and relu1(bn1(.))
    in evaluation mode, run in one pass where the backend has the kernel
    (``fusion.add_relu``, ``fusion.batchnorm_relu``: the layers keep their caches as usual).
    """

    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        self.in_channels, self.out_channels, self.stride = int(in_channels), int(out_channels), int(stride)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.relu1 = ReLU()
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(in_channels, out_channels, stride, shortcut)
        self.relu2 = ReLU()

    def forward(self, x):
        main = self.bn2(self.conv2(fusion.batchnorm_relu(self.bn1, self.relu1, self.conv1(x))))  # F(x)
        return fusion.add_relu(self.relu2, main, self.shortcut(x))        # merge: relu2(main + shortcut(x))

    def backward(self, dout):
        """dx = main-path backward + shortcut backward (None when the block is a model's
        input layer and ``needs_input_grad`` is off). Parameter gradients add into ``.grad``."""
        d_sum = self.relu2.backward(dout)  # the gradient at the sum goes to both addends unchanged
        d_main = self.bn2.backward(d_sum)  # main path, last layer first
        d_main = self.conv2.backward(d_main)
        d_main = self.relu1.backward(d_main)
        d_main = self.bn1.backward(d_main)
        d_main = self.conv1.backward(d_main)
        d_skip = self.shortcut.backward(d_sum)
        if d_main is None:  # conv1 skipped d loss / d x: nobody asked for it
            return None
        return d_main + d_skip  # the fork: x fed both paths, so its gradient is the sum

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"
