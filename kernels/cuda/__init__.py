"""CUDA kernels for the ``cupy`` backend (entries override the reference).

The kernels are CUDA C in this folder, one file per topic, each with its
Python wrappers in the module of the same stem:

===============================  ===============================================
conv.cu / conv.py                im2col, col2im (a gather: one thread per image
                                 pixel), and their _wide forms (the batch's
                                 blocks side by side); direct convolution
                                 (output, input gradient) for small layers
conv_igemm.cu / conv_igemm.py    implicit-GEMM convolution (output + bias, input
                                 gradient, weight gradient): tiled products whose
                                 tile loads gather from x and dy, no column matrix
                                 (block kernels: shared memory and barriers; the
                                 tile's main loop, FP32/FP64 multiply-adds or TF32
                                 mma.sync, in igemm_tile.cuh)
pool.cu / pool.py                maxpool2d forward/backward (backward a gather),
                                 maxunpool2d forward (integer-atomic claim +
                                 gather) / backward
activation.cu / activation.py    relu, leaky_relu, elu, gelu (exact and tanh):
                                 forward, backward (one table-driven helper)
optim.cu / optim.py              fused in-place sgd_update / adam_update, and
                                 their _multi versions (every tensor of a list in
                                 one launch)
loss.cu / loss.py                softmax cross-entropy: forward (probabilities and
                                 per-row losses, one thread per row), backward
gemm.py                          matmul: cuBLAS gemmStridedBatched via ctypes
                                 (CuPy refuses cuBLAS during CUDA-graph stream
                                 capture; used eagerly too)
launch.py                        sources, NVRTC compilation, launching, and the
                                 helpers the wrappers share (``array_address``)
===============================  ===============================================

The ``conv2d_*`` / ``conv_transpose2d_*`` entries run the layers' products
through a ``ConvSchedule`` (``CONV_SCHEDULE`` below) on these kernels.

``dropout_forward``, ``batchnorm_forward``, ``batchnorm_backward``,
``batchnorm_forward_eval`` and the fused ``batchnorm_relu_forward_eval`` have no
CUDA C of their own: their entries are the reference functions (the latter
``kernels/fused.py``'s definition), which already run on CuPy arrays as CuPy's
element-wise and reduction kernels.

Each ``.cu`` file is compiled once per device with ``cupy.RawModule``
(NVRTC), the first time one of its kernels is called; ``common.cuh`` is
prepended to the source so NVRTC never needs to open a file. Importing this
package does not import CuPy: every wrapper imports it on first use.

The wrappers keep the reference signatures (``minicnn.kernels.reference``)
and give the same numbers; they fall back to the reference function for
anything the kernels do not cover (NumPy inputs, dtypes other than float32 /
float64, non-contiguous in-place optimiser state, unusual geometry).

``maxpool2d_backward`` takes the window geometry as optional keywords
``kh, kw, sh, sw, ph, pw``: with them it runs a gather with one thread per
input pixel; without them (the reference signature ``dout, idx, h, w``) it
runs one thread per (n, c) plane, which is deterministic too but has less
parallelism.

Tests that replace the loader's state (``BLOCK``, ``get_function``,
``_cupy``, ...) patch ``minicnn.kernels.cuda.launch``, where it is read; the
names re-exported here are for reading and calling.
"""

from __future__ import annotations

import os as _os
from types import SimpleNamespace

from minicnn.kernels import fused as _fused
from minicnn.kernels import reference as _ref
from minicnn.kernels.conv_schedule import MiB, ConvSchedule

from . import launch
from .activation import (
    add_relu_forward,
    elu_backward,
    elu_forward,
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
)
from .conv import col2im, col2im_wide, conv2d_direct, conv2d_direct_input_grad, im2col, im2col_wide
from .conv_igemm import conv2d_igemm, conv2d_igemm_input_grad, conv2d_igemm_weight_grad
from .launch import BLOCK, MAX_GRID, NVRTC_OPTIONS, SOURCES, array_address, get_function, kernel_source
from .loss import cross_entropy_backward, cross_entropy_forward
from .optim import adam_update, adam_update_multi, sgd_update, sgd_update_multi
from .pool import (
    maxpool2d_backward,
    maxpool2d_forward,
    maxunpool2d_backward,
    maxunpool2d_forward,
    relu_maxpool2d_backward,
    relu_maxpool2d_forward,
)


def matmul(a, b, out=None, *, _tf32_flag="matmul"):
    """``a @ b`` on the device: cuBLAS through ctypes, which, unlike CuPy's matmul, can be
    recorded into a CUDA graph (see ``gemm``); float32 on TF32 tensor cores when
    ``minicnn.tf32.matmul`` allows it. NumPy input: the reference."""
    if not (launch._on_device(a) and launch._on_device(b)):
        return _ref.matmul(a, b, out=out)
    from minicnn.backend import tf32

    from . import gemm

    return gemm.matmul(a, b, out=out, tf32=getattr(tf32, _tf32_flag))


def conv_matmul(a, b, out=None):
    """The convolutions' products: :func:`matmul` under ``minicnn.tf32.conv`` (PyTorch's
    ``torch.backends.cudnn.allow_tf32``) instead of ``tf32.matmul``."""
    return matmul(a, b, out, _tf32_flag="conv")


TABLE: dict = {
    "matmul": matmul,
    "im2col": im2col,
    "col2im": col2im,
    "im2col_wide": im2col_wide,
    "col2im_wide": col2im_wide,
    "maxpool2d_forward": maxpool2d_forward,
    "maxpool2d_backward": maxpool2d_backward,
    "maxunpool2d_forward": maxunpool2d_forward,
    "maxunpool2d_backward": maxunpool2d_backward,
    "relu_forward": relu_forward,
    "relu_backward": relu_backward,
    "leaky_relu_forward": leaky_relu_forward,
    "leaky_relu_backward": leaky_relu_backward,
    "elu_forward": elu_forward,
    "elu_backward": elu_backward,
    "gelu_forward": gelu_forward,
    "gelu_backward": gelu_backward,
    "sgd_update": sgd_update,
    "adam_update": adam_update,
    "sgd_update_multi": sgd_update_multi,
    "adam_update_multi": adam_update_multi,
    "cross_entropy_forward": cross_entropy_forward,
    "cross_entropy_backward": cross_entropy_backward,
    # CuPy array code (see the module docstring)
    "dropout_forward": _ref.dropout_forward,
    "batchnorm_forward": _ref.batchnorm_forward,
    "batchnorm_backward": _ref.batchnorm_backward,
    "batchnorm_forward_eval": _ref.batchnorm_forward_eval,
    # fused operations (kernels/fused.py; minicnn.fusion runs ReLU -> MaxPool2d and the residual
    # merge relu(main + shortcut) through them)
    "relu_maxpool2d_forward": relu_maxpool2d_forward,
    "relu_maxpool2d_backward": relu_maxpool2d_backward,
    "add_relu_forward": add_relu_forward,
    # ... and batch norm (evaluation) + ReLU, CuPy array code like batchnorm_forward_eval
    "batchnorm_relu_forward_eval": _fused.batchnorm_relu_forward_eval,
}

# Convolutions (kernels/conv_schedule.py): no column matrix is kept for backward
# (a layer keeps only its input, as PyTorch does; backward runs im2col again, one
# memory-bound pass), built whole unless it is huge (then 512 MiB chunks); no
# thread split on the GPU. Keeping them all made a ResNet-20 step at batch 128 take
# 3.2x PyTorch's peak GPU memory (benchmarks/gpu_results/h200-2026-12-04-resnet20).
# MINICNN_CONV_WIDE=1 (read at import) runs each batch range as one product in the wide
# layout (ConvSchedule(wide=True)): one large GEMM instead of a strided batch of per-sample
# ones, and no (n, O, K) stack for the weight gradient. Off until a device run shows it
# faster (benchmarks/gpu_check.sh times both).
# MINICNN_CONV_DIRECT_MAX=K (read at import): layers whose weight has at most K elements
# compute their output and input gradient with the direct kernels, without a column matrix
# (ConvSchedule(direct_max=)); 0, the default, until a device run shows it faster.
# MINICNN_CONV_IMPLICIT=1 (read at import; ``use_implicit_gemm`` at run time): every
# convolution's output, input gradient and weight gradient through the implicit-GEMM
# kernels (conv_igemm.cu), no column matrix at all; it takes the place of DIRECT_MAX. Off
# until a device run shows it faster (benchmarks/gpu_check.sh's A/B --switch implicit).
WIDE = _os.environ.get("MINICNN_CONV_WIDE", "0").strip().lower() in ("1", "true", "yes", "on")
DIRECT_MAX = int(_os.environ.get("MINICNN_CONV_DIRECT_MAX", "0") or 0)
IMPLICIT = IMPLICIT_AT_IMPORT = _os.environ.get("MINICNN_CONV_IMPLICIT", "0").strip().lower() in ("1", "true",
                                                                                                   "yes", "on")
CONV_SCHEDULE = ConvSchedule(SimpleNamespace(im2col=im2col, col2im=col2im, matmul=conv_matmul,
                                             im2col_wide=im2col_wide, col2im_wide=col2im_wide,
                                             conv2d_direct=conv2d_direct,
                                             conv2d_direct_input_grad=conv2d_direct_input_grad),
                             keep=0, chunk=512 * MiB, wide=WIDE, direct_max=DIRECT_MAX)
TABLE.update(CONV_SCHEDULE.table())


def use_implicit_gemm(flag: bool) -> None:
    """On: every convolution (Conv2d and ConvTranspose2d: output, input gradient, weight gradient)
    runs on the schedule's direct paths through the implicit-GEMM kernels. Off: the direct
    kernels for the layers with at most ``DIRECT_MAX`` weights (output and input gradient),
    im2col + cuBLAS for the rest and for every weight gradient."""
    global IMPLICIT
    IMPLICIT = bool(flag)
    ops = CONV_SCHEDULE.ops
    if IMPLICIT:
        ops.conv2d_direct, ops.conv2d_direct_input_grad = conv2d_igemm, conv2d_igemm_input_grad
        ops.conv2d_direct_weight_grad = conv2d_igemm_weight_grad
        CONV_SCHEDULE.direct_max = 2**62
    else:
        ops.conv2d_direct, ops.conv2d_direct_input_grad = conv2d_direct, conv2d_direct_input_grad
        ops.__dict__.pop("conv2d_direct_weight_grad", None)
        CONV_SCHEDULE.direct_max = DIRECT_MAX


use_implicit_gemm(IMPLICIT)
