"""PyTorch versions of the seed networks in ``minicnn.models`` (for the benchmarks).

Same layers, same attribute names (so ``state_dict`` keys match and weights can
be copied across with :func:`copy_weights`), same order of operations:

* ``TorchTutorialNet`` -- conv 3->6 k5, ReLU, pool, conv 6->16 k5, ReLU, pool, fc 400->120->84->10;
* ``TorchDeconvNet``   -- the same encoder/head plus the unpool + transposed-conv decoder;
  ``forward`` returns ``(logits, x_hat)``;
* ``TorchNet2``        -- conv 3->32->64->128 (k5, p2), pool after each, fc 2048->64->10;
* ``TorchMNISTNet``    -- PyTorch's MNIST example (conv 1->10->20 k5, Dropout2d, fc 320->50->10);
* ``TorchResNet``      -- He et al.'s CIFAR-10 ResNet (``torch_resnet20()`` ...), the twin of
  ``minicnn.models.ResNet``: conv1/bn1, layer1-3 of ``TorchBasicBlock``, global average pool, fc.

Importing this module imports torch; callers check
``benchmarks.common.torch_available()`` first.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn as tnn


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
        self.conv2_drop = tnn.Dropout2d()
        self.fc1, self.fc2 = tnn.Linear(320, 50), tnn.Linear(50, num_classes)
        self.drop = tnn.Dropout()

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(self.drop(x))


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
                "mnist": TorchMNISTNet, "resnet20": torch_resnet20}


def copy_weights(ours, theirs):
    """Load a minicnn model's ``state_dict`` into the matching torch model (dtype of ``theirs``)."""
    ref = next(theirs.parameters())
    sd = {k: torch.from_numpy(np.array(v)).to(dtype=ref.dtype) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)
    return theirs
