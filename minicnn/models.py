"""The seed networks of the coursework, with forward and backward written out.

Attribute names match the PyTorch versions (``conv1``, ``fc1``, ...), so
their ``state_dict`` keys are the same and weights copy across directly.
A chain of layers is a named ``nn.Sequential`` (PyTorch's
``Sequential(OrderedDict(...))``); only a real fork (DeconvNet's shared
latent) writes its forward and backward by hand.

* ``TutorialNet``     -- PyTorch's CIFAR-10 tutorial net (task1).
* ``DeconvNet``       -- the same encoder keeping its pooling switches, the
  classifier head, and a decoder that unpools with those switches (task2/3).
  Two outputs share one latent: ``backward(d_logits, d_xhat)`` sums the two
  gradients where they meet at ``z2``.
* ``SmallCifarNet``   -- report C's net: conv 3->12->24 k5, pool after each, fc 600->120->84->10.
* ``ThreeBlockNet``   -- report B's nets: conv 3->32->64->128 (k5, p2), pool after each,
  optional BatchNorm / Dropout, fc 2048->64->10. ``report_b_base()``, ``report_b_net1()``
  (BatchNorm), ``report_b_net2()`` (Dropout 0.05).
* ``Net2``            -- the old name of ``report_b_base()`` (kept for old scripts and checkpoints).
* ``DropoutStudyNet`` -- report D's net: two blocks of two 3x3 convs (32, 64 channels),
  fc 4096->512->10, Dropout(p) after each block and the hidden fc; ReLU or GELU.
* ``MNISTNet``        -- PyTorch's MNIST example (conv 1->10->20 k5, fc 320->50->10).
* ``ResNet``          -- He et al.'s CIFAR-10 ResNets (depth 20/32/56: ``resnet20()`` ...):
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


class SmallCifarNet(nn.Sequential):
    """Report C's net. x (N, 3, 32, 32) -> logits (N, num_classes).

    conv1 3->12 k5 -> ReLU -> pool 2 -> conv2 12->24 k5 -> ReLU -> pool 2 ->
    flatten 600 (24 x 5 x 5) -> fc1 120 -> ReLU -> fc2 84 -> ReLU -> fc3 num_classes:
    the tutorial net (``TutorialNet``) with twice its channels.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(3, 12, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2, 2),
            conv2=nn.Conv2d(12, 24, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2, 2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(24 * 5 * 5, 120), relu3=nn.ReLU(),
            fc2=nn.Linear(120, 84), relu4=nn.ReLU(),
            fc3=nn.Linear(84, num_classes),
        ))


class ThreeBlockNet(nn.Sequential):
    """Report B's nets. x (N, 3, 32, 32) -> logits (N, num_classes).

    Three blocks, k = 1, 2, 3 (channels 3 -> 32 -> 64 -> 128, 32 -> 16 -> 8 -> 4 pixels):
        convk (k5, p2) -> [bnk: BatchNorm2d] -> reluk -> poolk (max 2) -> [dropk: Dropout(p)]
    then flatten 2048 (128 x 4 x 4) -> fc1 64 -> [bn4: BatchNorm1d(64)] -> relu4 -> fc2 num_classes.
    The bracketed layers exist only with ``batch_norm=True`` / ``dropout > 0``.

    The report says "BatchNorm1d after each fc"; here it follows the hidden fc1
    only (a stated choice): a BatchNorm on the logits would normalise the very
    scores the loss compares, which is unusual. The base net
    (no BatchNorm, no Dropout) has 390,410 parameters and the same
    ``state_dict`` keys as ``Net2`` (conv1.*, conv2.*, conv3.*, fc1.*, fc2.*).
    """

    def __init__(self, batch_norm: bool = False, dropout: float = 0.0, num_classes: int = 10):
        if batch_norm not in (True, False):
            raise TypeError(f"ThreeBlockNet: batch_norm must be True or False, got {batch_norm!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ThreeBlockNet: dropout must be a probability in [0, 1), got {dropout!r}")
        layers = OrderedDict()
        channels = (3, 32, 64, 128)
        for k in (1, 2, 3):
            layers[f"conv{k}"] = nn.Conv2d(channels[k - 1], channels[k], 5, padding=2)
            if batch_norm:
                layers[f"bn{k}"] = nn.BatchNorm2d(channels[k])
            layers[f"relu{k}"] = nn.ReLU()
            layers[f"pool{k}"] = nn.MaxPool2d(2)
            if dropout > 0:
                layers[f"drop{k}"] = nn.Dropout(dropout)
        layers["flatten"] = nn.Flatten()
        layers["fc1"] = nn.Linear(128 * 4 * 4, 64)
        if batch_norm:
            layers["bn4"] = nn.BatchNorm1d(64)
        layers["relu4"] = nn.ReLU()
        layers["fc2"] = nn.Linear(64, num_classes)
        super().__init__(layers)
        self.batch_norm, self.dropout = bool(batch_norm), float(dropout)


class Net2(ThreeBlockNet):
    """Report B's base net under its old name (``report_b_base()``): x (N, 3, 32, 32) -> (N, 10).

    Kept for old scripts, checkpoints and the benchmarks' ``"net2"`` key; its
    ``state_dict`` keys are conv1.*, conv2.*, conv3.*, fc1.*, fc2.*. In report B
    itself "Net2" is the *Dropout* variant: use ``report_b_net2()`` for that.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(batch_norm=False, dropout=0.0, num_classes=num_classes)


def report_b_base(num_classes: int = 10) -> ThreeBlockNet:
    """Report B's base net: no BatchNorm, no Dropout (390,410 parameters)."""
    return ThreeBlockNet(batch_norm=False, dropout=0.0, num_classes=num_classes)


def report_b_net1(num_classes: int = 10) -> ThreeBlockNet:
    """Report B's "Net1": the base net with BatchNorm2d after each conv and BatchNorm1d after fc1."""
    return ThreeBlockNet(batch_norm=True, dropout=0.0, num_classes=num_classes)


def report_b_net2(num_classes: int = 10) -> ThreeBlockNet:
    """Report B's "Net2": the base net with Dropout(0.05) after each conv block."""
    return ThreeBlockNet(batch_norm=False, dropout=0.05, num_classes=num_classes)


class DropoutStudyNet(nn.Sequential):
    """Report D's net. x (N, 3, 32, 32) -> logits (N, num_classes).

    Report D does not print its architecture; this is the stated choice:
    two blocks (32 then 64 channels; 32 -> 16 -> 8 pixels) of
        conv (3x3, p1) -> act -> conv (3x3, p1) -> act -> max pool 2 -> Dropout(p),
    then flatten 4096 (64 x 8 x 8) -> fc1 512 -> act -> Dropout(p) -> fc2 num_classes.
    ``activation``: ``"relu"`` or ``"gelu"`` (exact GELU, PyTorch's default).
    The Dropout layers are there for every p (p = 0 is the identity), so the
    layer names do not depend on p: conv1-4, act1-5, pool1-2, drop1-3, fc1-2.
    """

    ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}

    def __init__(self, p: float = 0.0, activation: str = "relu", num_classes: int = 10):
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"DropoutStudyNet: activation must be one of {sorted(self.ACTIVATIONS)}, "
                             f"got {activation!r}")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropoutStudyNet: dropout p must be a probability in [0, 1), got {p!r}")
        act = self.ACTIVATIONS[activation]
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(3, 32, 3, padding=1), act1=act(),
            conv2=nn.Conv2d(32, 32, 3, padding=1), act2=act(),
            pool1=nn.MaxPool2d(2), drop1=nn.Dropout(p),
            conv3=nn.Conv2d(32, 64, 3, padding=1), act3=act(),
            conv4=nn.Conv2d(64, 64, 3, padding=1), act4=act(),
            pool2=nn.MaxPool2d(2), drop2=nn.Dropout(p),
            flatten=nn.Flatten(),
            fc1=nn.Linear(64 * 8 * 8, 512), act5=act(), drop3=nn.Dropout(p),
            fc2=nn.Linear(512, num_classes),
        ))
        self.p, self.activation = float(p), activation


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


# "net2" comes before "report_b_base": both fit the same checkpoint, and the first fitting key wins.
MODELS = {"tutorial": TutorialNet, "deconv": DeconvNet, "net2": Net2, "mnist": MNISTNet,
          "resnet20": resnet20, "resnet32": resnet32, "resnet56": resnet56,
          "small_cifar": SmallCifarNet, "report_b_base": report_b_base, "report_b_net1": report_b_net1,
          "report_b_net2": report_b_net2, "dropout_study": DropoutStudyNet, "threeblock": ThreeBlockNet}
