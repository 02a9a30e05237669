"""PyTorch versions of the seed networks in ``minicnn.models`` (for the benchmarks).

Same layers, same attribute names (so ``state_dict`` keys match and weights can
be copied across with :func:`copy_weights`), same order of operations:

* ``TorchTutorialNet`` -- conv 3->6 k5, ReLU, pool, conv 6->16 k5, ReLU, pool, fc 400->120->84->10;
* ``TorchDeconvNet``   -- the same encoder/head plus the unpool + transposed-conv decoder;
  ``forward`` returns ``(logits, x_hat)``;
* ``TorchNet2``        -- conv 3->32->64->128 (k5, p2), pool after each, fc 2048->64->10;
* ``TorchSmallCifarNet`` -- report C: conv 3->12->24 k5, pool after each, fc 600->120->84->10;
* ``TorchThreeBlockNet`` -- report B (``torch_report_b_base()``, ``_net1()`` BatchNorm, ``_net2()``
  Dropout 0.05): ``TorchNet2``'s layers with optional BatchNorm (bn1-3 after the convs, bn4
  after fc1) and Dropout (drop1-3 after the blocks);
* ``TorchDropoutStudyNet`` -- report D: two blocks of two 3x3 convs (32, 64 channels), Dropout(p)
  after each block and after the hidden fc 4096->512; ReLU or GELU;
* ``TorchMNISTNet``    -- PyTorch's MNIST example (conv 1->10->20 k5, Dropout2d, fc 320->50->10);
* ``TorchResNet``      -- He et al.'s CIFAR-10 ResNet (``torch_resnet20()`` ...), the twin of
  ``minicnn.models.ResNet``: conv1/bn1, layer1-3 of ``TorchBasicBlock``, global average pool, fc.

Dropout: every twin drops through :func:`dropout`. By default it is PyTorch's own
(``F.dropout`` / ``F.dropout2d``, masks from torch's generator); inside
``with minicnn_masks():`` it draws the uniforms from minicnn's generator in minicnn's
shapes and order (``minicnn.nn.dropout.uniform_draws``), so a twin that follows minicnn's
sequence of draws drops exactly the units minicnn drops.

Importing this module imports torch; callers check
``benchmarks.machine.torch_available()`` first.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn as tnn


_masks = {"minicnn": False}


@contextlib.contextmanager
def minicnn_masks():
    """Within the block, :func:`dropout` takes its masks from minicnn's generator."""
    before = _masks["minicnn"]
    _masks["minicnn"] = True
    try:
        yield
    finally:
        _masks["minicnn"] = before


def dropout(x, p: float, training: bool, channels: bool = False):
    """Inverted dropout of x (N, C, ...): each element, or each (n, c) channel when ``channels``,
    kept with probability 1 - p and scaled by 1 / (1 - p). PyTorch's ``F.dropout`` /
    ``F.dropout2d``, or (``minicnn_masks``) the mask minicnn's Dropout / Dropout2d makes from its
    own float32 draws: (u >= p) / (1 - p), one draw per element or per (n, c)."""
    if not training or p == 0.0:
        return x
    if not _masks["minicnn"]:
        return F.dropout2d(x, p, True) if channels else F.dropout(x, p, True)
    if p == 1.0:
        return x * 0  # minicnn draws nothing at p = 1
    from minicnn.nn.dropout import uniform_draws  # minicnn's own draws (a CPU backend is active here)

    shape = tuple(x.shape[:2]) + (1,) * (x.dim() - 2) if channels else tuple(x.shape)
    u = uniform_draws(shape)
    mask = ((u >= p) * (1.0 / (1.0 - p))).astype(np.float32)
    return x * torch.from_numpy(mask).to(x.dtype)


class Dropout(tnn.Module):
    """:func:`dropout` as a module (``channels=True``: Dropout2d); no parameters, so no state_dict keys."""

    def __init__(self, p: float = 0.5, channels: bool = False):
        super().__init__()
        self.p, self.channels = p, channels

    def forward(self, x):
        return dropout(x, self.p, self.training, self.channels)


class TorchTutorialNet(tnn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1, self.conv2 = tnn.Conv2d(3, 6, 5), tnn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class TorchDeconvNet(TorchTutorialNet):
    def __init__(self, num_classes: int = 10):
        super().__init__(num_classes)
        self.deconv2, self.deconv1 = tnn.ConvTranspose2d(16, 6, 5), tnn.ConvTranspose2d(6, 3, 5)

    def forward(self, x):
        a1 = F.relu(self.conv1(x))
        z1, i1 = F.max_pool2d(a1, 2, return_indices=True)
        a2 = F.relu(self.conv2(z1))
        z2, i2 = F.max_pool2d(a2, 2, return_indices=True)
        h = F.relu(self.fc2(F.relu(self.fc1(torch.flatten(z2, 1)))))
        logits = self.fc3(h)
        u2 = F.relu(F.max_unpool2d(z2, i2, 2, output_size=a2.shape[2:]))
        u1 = F.relu(F.max_unpool2d(self.deconv2(u2), i1, 2, output_size=a1.shape[2:]))
        return logits, self.deconv1(u1)


class TorchNet2(tnn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = tnn.Conv2d(32, 64, 5, padding=2)
        self.conv3 = tnn.Conv2d(64, 128, 5, padding=2)
        self.fc1, self.fc2 = tnn.Linear(128 * 4 * 4, 64), tnn.Linear(64, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class TorchMNISTNet(tnn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1, self.conv2 = tnn.Conv2d(1, 10, 5), tnn.Conv2d(10, 20, 5)
        self.conv2_drop = Dropout(0.5, channels=True)
        self.fc1, self.fc2 = tnn.Linear(320, 50), tnn.Linear(50, num_classes)
        self.drop = Dropout(0.5)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(self.drop(x))


class TorchSmallCifarNet(tnn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1, self.conv2 = tnn.Conv2d(3, 12, 5), tnn.Conv2d(12, 24, 5)
        self.fc1, self.fc2, self.fc3 = tnn.Linear(600, 120), tnn.Linear(120, 84), tnn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class TorchThreeBlockNet(tnn.Module):
    def __init__(self, batch_norm: bool = False, dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        self.batch_norm, self.p = batch_norm, dropout
        self.conv1 = tnn.Conv2d(3, 32, 5, padding=2)
        if batch_norm:
            self.bn1 = tnn.BatchNorm2d(32)
        self.conv2 = tnn.Conv2d(32, 64, 5, padding=2)
        if batch_norm:
            self.bn2 = tnn.BatchNorm2d(64)
        self.conv3 = tnn.Conv2d(64, 128, 5, padding=2)
        if batch_norm:
            self.bn3 = tnn.BatchNorm2d(128)
        self.fc1 = tnn.Linear(128 * 4 * 4, 64)
        if batch_norm:
            self.bn4 = tnn.BatchNorm1d(64)
        self.fc2 = tnn.Linear(64, num_classes)

    def _norm(self, name, x):
        return getattr(self, name)(x) if self.batch_norm else x

    def forward(self, x):
        for k in (1, 2, 3):
            x = F.max_pool2d(F.relu(self._norm(f"bn{k}", getattr(self, f"conv{k}")(x))), 2)
            x = dropout(x, self.p, self.training)
        x = F.relu(self._norm("bn4", self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def torch_report_b_base(num_classes: int = 10) -> TorchThreeBlockNet:
    return TorchThreeBlockNet(False, 0.0, num_classes)


def torch_report_b_net1(num_classes: int = 10) -> TorchThreeBlockNet:
    return TorchThreeBlockNet(True, 0.0, num_classes)


def torch_report_b_net2(num_classes: int = 10) -> TorchThreeBlockNet:
    return TorchThreeBlockNet(False, 0.05, num_classes)


class TorchDropoutStudyNet(tnn.Module):
    def __init__(self, p: float = 0.0, activation: str = "relu", num_classes: int = 10):
        super().__init__()
        self.p = p
        self.act = {"relu": F.relu, "gelu": F.gelu}[activation]
        self.conv1, self.conv2 = tnn.Conv2d(3, 32, 3, padding=1), tnn.Conv2d(32, 32, 3, padding=1)
        self.conv3, self.conv4 = tnn.Conv2d(32, 64, 3, padding=1), tnn.Conv2d(64, 64, 3, padding=1)
        self.fc1, self.fc2 = tnn.Linear(64 * 8 * 8, 512), tnn.Linear(512, num_classes)

    def forward(self, x):
        drop = lambda t: dropout(t, self.p, self.training)  # noqa: E731
        x = drop(F.max_pool2d(self.act(self.conv2(self.act(self.conv1(x)))), 2))
        x = drop(F.max_pool2d(self.act(self.conv4(self.act(self.conv3(x)))), 2))
        x = drop(self.act(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


class TorchBasicBlock(tnn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); shortcut "A": zero-padded
    subsample, "B": 1x1 conv + BN (as ``shortcut.conv`` / ``shortcut.bn``), identity when
    the shape is kept."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = tnn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.option_a = None
        if stride == 1 and in_planes == planes:
            self.shortcut = tnn.Identity()
        elif shortcut == "A":
            self.shortcut = tnn.Identity()
            front = (planes - in_planes) // 2
            self.option_a = (stride, front, planes - in_planes - front)
        else:
            self.shortcut = tnn.Sequential(OrderedDict(
                conv=tnn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), bn=tnn.BatchNorm2d(planes)))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.option_a is not None:
            s, front, back = self.option_a
            skip = F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, front, back), "constant", 0.0)
        else:
            skip = self.shortcut(x)
        return F.relu(out + skip)


class TorchResNet(tnn.Module):
    def __init__(self, depth: int = 20, num_classes: int = 10, shortcut: str = "A"):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = tnn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(16)

        def stage(cin, cout, stride):
            return tnn.Sequential(*[TorchBasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                                                    shortcut) for i in range(n)])

        self.layer1, self.layer2, self.layer3 = stage(16, 16, 1), stage(16, 32, 2), stage(32, 64, 2)
        self.fc = tnn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def torch_resnet20(num_classes: int = 10, shortcut: str = "A") -> TorchResNet:
    return TorchResNet(20, num_classes, shortcut)


TORCH_MODELS = {"tutorial": TorchTutorialNet, "deconv": TorchDeconvNet, "net2": TorchNet2,
                "mnist": TorchMNISTNet, "resnet20": torch_resnet20,
                "small_cifar": TorchSmallCifarNet, "report_b_base": torch_report_b_base,
                "report_b_net1": torch_report_b_net1, "report_b_net2": torch_report_b_net2,
                "dropout_study": TorchDropoutStudyNet}


def copy_weights(ours, theirs):
    """Load a minicnn model's ``state_dict`` into the matching torch model (dtype of ``theirs``)."""
    ref = next(theirs.parameters())
    sd = {k: torch.from_numpy(np.array(v)).to(dtype=ref.dtype) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)
    return theirs
