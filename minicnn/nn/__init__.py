"""Layers with explicit forward and backward (PyTorch's names and semantics).

Each layer file holds the math as CS231n's stateless pairs --
``*_forward(...) -> (out, cache)`` (batch norm also returns the batch
statistics) and ``*_backward(dout, cache) -> gradients`` -- and thin Module
classes that check their input, keep the cache between the two calls and add
parameter gradients into ``.grad``. ``dout`` is always the gradient of the
loss with respect to the layer's output. The pairs call the backend's kernel
table (``backend.current().ops``) for the work that has a fast kernel.
"""

from minicnn.nn.activation import ELU, GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from minicnn.nn.conv import Conv2d, ConvTranspose2d
from minicnn.nn.dropout import Dropout, Dropout2d
from minicnn.nn.init import get_default_dtype, set_default_dtype
from minicnn.nn.linear import Flatten, Linear
from minicnn.nn.loss import CrossEntropyLoss, MSELoss
from minicnn.nn.module import Identity, Module, Parameter, Sequential
from minicnn.nn.norm import BatchNorm1d, BatchNorm2d
from minicnn.nn.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d
from minicnn.nn.residual import BasicBlock, ZeroPadShortcut

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BasicBlock", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d",
    "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU", "Flatten", "GELU", "Identity", "LeakyReLU", "Linear",
    "MSELoss", "MaxPool2d", "MaxUnpool2d", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh",
    "ZeroPadShortcut", "get_default_dtype", "set_default_dtype",
]
