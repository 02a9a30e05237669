"""PyTorch versions of the seed networks in ``minicnn.models`` (for the benchmarks).

Same layers, same attribute names (so ``state_dict`` keys match and weights can
be copied across with :func:`copy_weights`), same order of operations:

* ``TorchTutorialNet`` -- conv 3->6 k5, ReLU, pool, conv 6->16 k5, ReLU, pool, fc 400->120->84->10;
* ``TorchDeconvNet``   -- the same encoder/head plus the unpool + transposed-conv decoder;
  ``forward`` returns ``(logits, x_hat)``;
* ``TorchNet2``        -- conv 3->32->64->128 (k5, p2), pool after each, fc 2048->64->10;
* ``TorchMNISTNet``    -- PyTorch's MNIST example (conv 1->10->20 k5, Dropout2d, fc 320->50->10).

Importing this module imports torch; callers check
``benchmarks.common.torch_available()`` first.
"""

from __future__ import annotations

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


TORCH_MODELS = {"tutorial": TorchTutorialNet, "deconv": TorchDeconvNet, "net2": TorchNet2,
                "mnist": TorchMNISTNet}


def copy_weights(ours, theirs):
    """Load a minicnn model's ``state_dict`` into the matching torch model (dtype of ``theirs``)."""
    ref = next(theirs.parameters())
    sd = {k: torch.from_numpy(np.array(v)).to(dtype=ref.dtype) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)
    return theirs
