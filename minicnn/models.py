"""The seed networks of the coursework, with forward and backward written out.

Attribute names match the PyTorch versions (``conv1``, ``fc1``, ...), so
their ``state_dict`` keys are the same and weights copy across directly.
A chain of layers is a named ``nn.Sequential`` (PyTorch's
``Sequential(OrderedDict(...))``); only a real fork (DeconvNet's shared
latent) writes its forward and backward by hand.

* ``TutorialNet``  -- PyTorch's CIFAR-10 tutorial net (task1).
* ``DeconvNet``    -- the same encoder keeping its pooling switches, the
  classifier head, and a decoder that unpools with those switches (task2/3).
  Two outputs share one latent: ``backward(d_logits, d_xhat)`` sums the two
  gradients where they meet at ``z2``.
* ``Net2``         -- conv 3->32->64->128 (k5, p2), pool after each, fc 2048->64->10.
* ``MNISTNet``     -- PyTorch's MNIST example (conv 1->10->20 k5, fc 320->50->10).
* ``ResNet``       -- He et al.'s CIFAR-10 ResNets (depth 20/32/56: ``resnet20()`` ...):
  a chain of stages of :class:`minicnn.nn.BasicBlock` (whose fork is written
  out in ``minicnn/nn/residual.py``), so the net itself is a named Sequential.
"""

from __future__ import annotations

from collections import OrderedDict

from minicnn import nn


class TutorialNet(nn.Sequential):
    """x (N, 3, 32, 32) -> logits (N, 10).

    conv1 3->6 k5 -> ReLU -> pool 2 -> conv2 6->16 k5 -> ReLU -> pool 2 ->
    flatten 400 -> fc1 120 -> ReLU -> fc2 84 -> ReLU -> fc3 10.
    A chain, so a named Sequential: forward runs the layers in order,
    backward runs their backwards in reverse.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(3, 6, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2, 2),
            conv2=nn.Conv2d(6, 16, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2, 2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(16 * 5 * 5, 120), relu3=nn.ReLU(),
            fc2=nn.Linear(120, 84), relu4=nn.ReLU(),
            fc3=nn.Linear(84, num_classes),
        ))


class DeconvNet(nn.Module):
    """Classifier plus deconvolutional decoder sharing the encoder (task2).

    Encoder: x (N,3,32,32) -conv1,ReLU-> (N,6,28,28) -pool1-> z1 (N,6,14,14)
             -conv2,ReLU-> (N,16,10,10) -pool2-> z2 (N,16,5,5); switches kept.
    Head:    z2 -> flatten 400 -> fc1 120 -> ReLU -> fc2 84 -> ReLU -> fc3 10.
    Decoder: z2 -unpool(switches 2)-> ReLU -> deconv2 16->6 k5 -> (N,6,14,14)
             -unpool(switches 1)-> ReLU -> deconv1 6->3 k5 -> x_hat (N,3,32,32).

    ``forward(x)`` returns ``(logits, x_hat)``; ``backward(d_logits, d_xhat)``
    returns dL/dx, with dL/dz2 = head-backward + decoder-backward.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2, 2, return_indices=True)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2, 2, return_indices=True)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)
        self.unpool2 = nn.MaxUnpool2d(2, 2)
        self.relu5 = nn.ReLU()
        self.deconv2 = nn.ConvTranspose2d(16, 6, 5)
        self.unpool1 = nn.MaxUnpool2d(2, 2)
        self.relu6 = nn.ReLU()
        self.deconv1 = nn.ConvTranspose2d(6, 3, 5)
        self.indices1 = self.indices2 = None
        self.size1 = self.size2 = None

    # -- pieces, usable on their own (task3 decodes masked latents) ---------
    def encode(self, x):
        """x -> (z1, z2); keeps the switches and pre-pool sizes for decoding."""
        a1 = self.relu1(self.conv1(x))
        z1, self.indices1 = self.pool1(a1)
        a2 = self.relu2(self.conv2(z1))
        z2, self.indices2 = self.pool2(a2)
        self.size1, self.size2 = a1.shape[2:], a2.shape[2:]
        return z1, z2

    def classify(self, z2):
        h = self.relu3(self.fc1(self.flatten(z2)))
        return self.fc3(self.relu4(self.fc2(h)))

    def decode_z2(self, z2):
        """z2 (N,16,5,5) -> z1-shaped map (N,6,14,14), using switches 2."""
        u2 = self.unpool2(z2, self.indices2, output_size=self.size2)
        return self.deconv2(self.relu5(u2))

    def decode_z1(self, z1):
        """z1 (N,6,14,14) -> x_hat (N,3,32,32), using switches 1."""
        u1 = self.unpool1(z1, self.indices1, output_size=self.size1)
        return self.deconv1(self.relu6(u1))

    def forward(self, x):
        _, z2 = self.encode(x)
        return self.classify(z2), self.decode_z1(self.decode_z2(z2))

    # -- backward -----------------------------------------------------------
    def backward_decode_z1(self, d_xhat):
        return self.unpool1.backward(self.relu6.backward(self.deconv1.backward(d_xhat)))

    def backward_decode_z2(self, d_z1hat):
        return self.unpool2.backward(self.relu5.backward(self.deconv2.backward(d_z1hat)))

    def backward_classify(self, d_logits):
        g = self.relu4.backward(self.fc3.backward(d_logits))
        g = self.relu3.backward(self.fc2.backward(g))
        return self.flatten.backward(self.fc1.backward(g))

    def backward_encode(self, d_z2):
        g = self.conv2.backward(self.relu2.backward(self.pool2.backward(d_z2)))
        return self.conv1.backward(self.relu1.backward(self.pool1.backward(g)))

    def backward(self, d_logits, d_xhat):
        # A fork in the forward pass is a sum in the backward pass. z2 feeds two
        # paths (head and decoder), so dL/dz2 is the sum of the gradients coming
        # back along each; any fork/merge module is written this way: run each
        # branch's backward from its own output gradient, add where they meet.
        d_z2 = self.backward_classify(d_logits)
        d_z2 = d_z2 + self.backward_decode_z2(self.backward_decode_z1(d_xhat))
        return self.backward_encode(d_z2)


class Net2(nn.Sequential):
    """x (N, 3, 32, 32) -> (N, 10): three conv (k5, p2) + ReLU + pool 2 blocks, fc 2048->64->10."""

    def __init__(self, num_classes: int = 10):
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(3, 32, 5, padding=2), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(32, 64, 5, padding=2), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            conv3=nn.Conv2d(64, 128, 5, padding=2), relu3=nn.ReLU(), pool3=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(128 * 4 * 4, 64), relu4=nn.ReLU(),
            fc2=nn.Linear(64, num_classes),
        ))


class MNISTNet(nn.Sequential):
    """x (N, 1, 28, 28) -> logits (N, 10), PyTorch's MNIST example net.

    conv1 1->10 k5 -> pool 2 -> ReLU -> conv2 10->20 k5 -> Dropout2d -> pool 2
    -> ReLU -> flatten 320 -> fc1 50 -> ReLU -> Dropout -> fc2 10.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(1, 10, 5), pool1=nn.MaxPool2d(2), relu1=nn.ReLU(),
            conv2=nn.Conv2d(10, 20, 5), conv2_drop=nn.Dropout2d(), pool2=nn.MaxPool2d(2), relu2=nn.ReLU(),
            flatten=nn.Flatten(),
            fc1=nn.Linear(320, 50), relu3=nn.ReLU(), drop=nn.Dropout(),
            fc2=nn.Linear(50, num_classes),
        ))


class ResNet(nn.Sequential):
    """He et al. (2016), section 4.2: the ResNets for CIFAR-10. x (N, 3, 32, 32) -> logits (N, 10).

    conv1 3->16 k3 -> bn1 -> ReLU -> layer1 (n blocks, 16 ch, 32x32) -> layer2
    (n blocks, 32 ch, stride 2: 16x16) -> layer3 (n blocks, 64 ch, stride 2: 8x8)
    -> global average pool (N, 64, 1, 1) -> flatten -> fc 64->10;
    n = (depth - 2) / 6, so depth 20, 32, 56 have 3, 5, 9 blocks per stage and
    6n + 2 weighted layers. Every 3x3 convolution has no bias (a BatchNorm
    follows). ``shortcut``: ``"A"`` (zero-padded identity, the paper's CIFAR
    choice: no extra parameters) or ``"B"`` (1x1 conv + BN) where a stage
    changes the shape; identity elsewhere. Weights: PyTorch's default init.

    State-dict keys: conv1.weight, bn1.*, layer1.0.conv1.weight, layer1.0.bn1.*,
    ..., layer3.{n-1}.bn2.*, fc.weight, fc.bias (and layerK.0.shortcut.conv/bn
    with option B), as ``benchmarks/torch_models.py``'s ``TorchResNet``.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, shortcut: str = "A"):
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNet: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110 ...), got {depth}")
        n = (depth - 2) // 6
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(3, 16, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(16), relu=nn.ReLU(),
            layer1=self.stage(16, 16, n, 1, shortcut),
            layer2=self.stage(16, 32, n, 2, shortcut),
            layer3=self.stage(32, 64, n, 2, shortcut),
            avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
            fc=nn.Linear(64, num_classes),
        ))
        self.depth, self.shortcut = depth, shortcut

    @staticmethod
    def stage(in_channels: int, out_channels: int, blocks: int, stride: int, shortcut: str) -> nn.Sequential:
        """``blocks`` basic blocks; the first one changes the shape (stride, channels)."""
        return nn.Sequential(*[nn.BasicBlock(in_channels if i == 0 else out_channels, out_channels,
                                             stride if i == 0 else 1, shortcut) for i in range(blocks)])


def resnet20(num_classes: int = 10, shortcut: str = "A") -> ResNet:
    """ResNet-20 (0.27 M parameters; He et al.: 8.75 % CIFAR-10 test error)."""
    return ResNet(20, num_classes, shortcut)


def resnet32(num_classes: int = 10, shortcut: str = "A") -> ResNet:
    """ResNet-32 (0.46 M parameters; He et al.: 7.51 %)."""
    return ResNet(32, num_classes, shortcut)


def resnet56(num_classes: int = 10, shortcut: str = "A") -> ResNet:
    """ResNet-56 (0.85 M parameters; He et al.: 6.97 %)."""
    return ResNet(56, num_classes, shortcut)


MODELS = {"tutorial": TutorialNet, "deconv": DeconvNet, "net2": Net2, "mnist": MNISTNet,
          "resnet20": resnet20, "resnet32": resnet32, "resnet56": resnet56}
