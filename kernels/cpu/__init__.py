"""Numba CPU kernels for the ``numba`` backend (entries override the reference).

Every entry has the signature and semantics of its ``minicnn.kernels.reference``
namesake; ``tests/test_kernels_cpu.py`` and ``tests/test_kernels_cpu_elementwise.py``
compare them. Kernels are compiled lazily on first use per dtype/ndim and cached
on disk (``cache=True``), each in a serial and a parallel (``prange``) variant;
the thin Python wrapper makes the input C-contiguous and picks the variant by
size (thread start-up costs more than it saves on small arrays).

Outputs. A kernel takes its arguments followed by its output arrays, and the
wrapper allocates those with NumPy (``np.empty``) and passes them in; no kernel
allocates a result inside Numba (scratch planes excepted). One convention for
every kernel, so ``bench.py --variants`` can call any of them with the
wrapper's outputs, and im2col/col2im's ``out=`` is the same argument made
public. (NumPy also backs large arrays with huge pages, which Numba's
allocator does not: fewer page faults.)

Convolutions. The ``conv2d_*`` and ``conv_transpose2d_*`` entries are a
``ConvSchedule`` (``kernels/conv_schedule.py``): the layer's products run a
batch chunk at a time, the chunks dealt to one thread per core by
``run_split`` (``threads.py``; ``split_chooser.py`` can send a small batch's
products to BLAS's threads instead). ``CONV_SCHEDULE`` holds its limits; the
layers of ``direct_rule`` (every float32 one up to 7 wide, stride up to its kernel's) run the
direct kernels (``direct.py``) instead, their batch ranges in one call on
Numba's threads.

Threads. Each kernel has a serial and a parallel (``prange``) variant; the
parallel one is used above a per-kernel size threshold only while parallel
mode is on. ``set_parallel(True/False)`` switches it; at import the mode is
taken from ``MINICNN_CPU_PARALLEL`` (``1``/``0``) when set, else it is on
exactly when Numba's threading layer is TBB (``pip install tbb``) and Numba has
more than one thread. Why not with the OpenMP layer (what this environment
has): an OpenMP parallel region ends in a barrier that waits for every
thread, so when the other core is busy (another process, or OpenBLAS threads
still spinning after a matmul) each call waits milliseconds for the scheduler
to give the worker a core (benchmarks/notes/history.md). TBB lets the calling thread
do all the chunks itself and degrades to serial speed instead. With parallel
mode off, the kernels a training step spends most in besides the convolutions
(fused ReLU + max-pool, batch norm, ReLU) still run their parallel variant from
a size of their own (``*_TEAM_MIN``, 2^16 elements) when ``threads.element_wise`` finds the
cores free for it (not inside a ``run_split`` share): with BLAS at one thread
there is no spinning BLAS worker to wait for, and those steps took 0.87-0.96x
as long (Net2, ResNet-20, the tutorial net at batch 64 and 256;
benchmarks/notes/cpu-direct.md, "Batch ranges on Numba's threads").
``python -m minicnn.kernels.cpu.bench`` times the kernels and both variants.
"""

import os as _os
from types import SimpleNamespace

import numpy as _np

from .activations import (
    dropout_forward,
    elu_backward,
    elu_forward,
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
)
from .. import reference as _reference
from ..conv_schedule import MiB, ConvSchedule
from .batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_forward_eval
from .conv import col2im, col2im_wide, im2col, im2col_wide
from .direct import conv2d_direct, conv2d_direct_input_grad, conv2d_direct_weight_grad
from .direct_blocked_dw import KW_MAX
from .loss import cross_entropy_backward, cross_entropy_forward
from .optim import adam_update, adam_update_multi, sgd_update, sgd_update_multi
from .split_chooser import from_environment as _split_chooser
from .pooling import (
    maxpool2d_backward,
    maxpool2d_forward,
    maxunpool2d_backward,
    maxunpool2d_forward,
)

matmul = _reference.matmul  # NumPy's matmul: BLAS already is the fast CPU product

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
    "dropout_forward": dropout_forward,
    "batchnorm_forward": batchnorm_forward,
    "batchnorm_backward": batchnorm_backward,
    "batchnorm_forward_eval": batchnorm_forward_eval,
    "sgd_update": sgd_update,
    "adam_update": adam_update,
    "sgd_update_multi": sgd_update_multi,
    "adam_update_multi": adam_update_multi,
    # one pass each instead of a dozen NumPy calls (loss.py: the batch-4 steps' overhead)
    "cross_entropy_forward": cross_entropy_forward,
    "cross_entropy_backward": cross_entropy_backward,
}

# Column matrices up to 2 MiB are kept, larger ones built 1 MiB of samples at a
# time (fits the 2-thread split best; benchmarks/notes/history.md, "Conv limits"),
# into per-thread scratch buffers of up to 4 MiB reused from call to call. The shares
# run on one thread per core, or for a small batch (<= 2 samples per core) one after
# another with BLAS's threads inside each product (split_chooser.py). The wide
# layout (wide=True) is not used here: no faster on whole CPU training steps
# (benchmarks/notes/cpu-kernels.md, "The wide layout and the weight-gradient sum on the CPU").
# The direct kernels (no column matrix at all) take every float32 layer up to 7 taps wide with a
# stride up to its kernel's (direct_blocked.py: tiles of output values held in vector registers)
# and, in float64, the stride-1 layers with few output channels on a large plane (direct.py's
# row passes; direct_rule).
# Training steps with them took 0.51-0.68x as long as through im2col + BLAS for the tutorial
# net, DeconvNet, Net2 and ResNet-20 at batch 64 and 256, 0.86-1.07x at batch 4
# (benchmarks/notes/cpu-direct.md, "Register-blocked direct convolution").
# MINICNN_CPU_DIRECT_MAX=K (read at import) caps the weights of a direct layer; 0 turns the
# direct kernels off (the im2col path for every layer, e.g. to time both).
DIRECT_MAX = 1 << 20
DIRECT_MAX_ROWS = 4096  # weights of a float64 direct layer (the passes)
DIRECT_MAX_CHANNELS = 16  # output channels (a ConvTranspose2d: input channels)
DIRECT_MIN_PIXELS = 512  # output pixels per sample (a ConvTranspose2d: input pixels)


def direct_rule(w, pixels: int, stride) -> bool:
    """The CPU schedule's choice of the direct kernels for a layer with weight ``w`` (O, C, kh, kw)
    whose Conv2d has ``pixels`` output pixels per sample.

    float32 (the register-blocked kernels): every kernel at most ``direct_blocked_dw.KW_MAX``
    wide, with a stride no larger than the kernel (a strided layer's input is cut into its
    phases, and a 1x1 kernel with stride 2 would read one phase in four); they beat im2col +
    BLAS on every such layer of the nets here, small planes too (Net2's 5x5 conv3 on 8x8) and
    ResNet-20's stride-2 3x3 layers (benchmarks/notes/cpu-resnet.md, "Strided layers").
    float64 (the passes, stride 1 only): few output channels, a large plane, a kernel 3 or 5
    wide (the widths with a two-channel pass)."""
    kh, kw = w.shape[2], w.shape[3]
    sh, sw = (int(s) for s in stride)
    if w.dtype == _np.float32:
        return kw <= KW_MAX and sh <= kh and sw <= kw
    return (tuple(stride) == (1, 1) and w.shape[0] <= DIRECT_MAX_CHANNELS and w.size <= DIRECT_MAX_ROWS
            and pixels >= DIRECT_MIN_PIXELS and kw in (3, 5))


def _direct_max_from_environment(default: int = DIRECT_MAX) -> int:
    raw = _os.environ.get("MINICNN_CPU_DIRECT_MAX", "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"MINICNN_CPU_DIRECT_MAX={raw!r}: expected a number of weights >= 0 (0: no direct kernels)")
    return int(raw)


# A direct call runs its batch ranges on Numba's threads (2-5 us a parallel region), not the
# split's helper threads (~110 us a hand-over, what split_min_macs' 4 Mi multiply-adds was set
# for): it takes one range per core from 1.5 Mi. In training steps, split from any size / from
# 4 Mi: the tutorial net 1.031 and DeconvNet 1.048 at batch 4 (their convs 0.96-1.41 Mi: each
# call alone was faster split, the step was not); from 1.5 Mi / from 4 Mi at batch 8 (1.9-2.8
# Mi) the tutorial net 0.951 and 0.987, DeconvNet 0.969 twice, at batch 16 0.925-0.987 and
# 0.849-0.850, ResNet-20 (its 3 -> 16 conv1 1.77 Mi at batch 4) 1.000-1.011
# (benchmarks/notes/cpu-overhead.md, "Small direct calls on both cores").
DIRECT_SPLIT_MIN_MACS = 3 << 19

CONV_SCHEDULE = ConvSchedule(SimpleNamespace(im2col=im2col, col2im=col2im, matmul=matmul,
                                             im2col_wide=im2col_wide, col2im_wide=col2im_wide,
                                             conv2d_direct=conv2d_direct,
                                             conv2d_direct_input_grad=conv2d_direct_input_grad,
                                             conv2d_direct_weight_grad=conv2d_direct_weight_grad,
                                             direct_ranges=True),
                             keep=2 * MiB, chunk=1 * MiB, split=_split_chooser(), stack_limit=1 * MiB,
                             dw_transposed=True, scratch_max=4 * MiB,
                             direct_max=_direct_max_from_environment(), direct_rule=direct_rule,
                             direct_split_min_macs=DIRECT_SPLIT_MIN_MACS)
TABLE.update(CONV_SCHEDULE.table())

# Fused operations (kernels.fused): minicnn.fusion runs ReLU -> MaxPool2d, the residual
# blocks' relu(main + shortcut) and an evaluation batch norm's ReLU through them.
from .fused import (add_relu_forward, batchnorm_relu_forward_eval, relu_maxpool2d_backward,  # noqa: E402
                    relu_maxpool2d_forward)

TABLE.update(relu_maxpool2d_forward=relu_maxpool2d_forward, relu_maxpool2d_backward=relu_maxpool2d_backward,
             add_relu_forward=add_relu_forward, batchnorm_relu_forward_eval=batchnorm_relu_forward_eval)

from . import activations as _activations
from . import batchnorm as _batchnorm
from . import conv as _conv
from . import fused as _fused
from . import optim as _optim
from . import pooling as _pooling

_THRESHOLD_MODULES = (_conv, _pooling, _activations, _optim, _batchnorm, _fused)
# name -> (module, default): the element counts above which a wrapper uses
# the parallel kernel (module-level constants ending in _PAR_MIN)
_DEFAULT_THRESHOLDS = {
    name: (mod, getattr(mod, name))
    for mod in _THRESHOLD_MODULES
    for name in dir(mod)
    if name.endswith("_PAR_MIN")
}
_NEVER = 1 << 62


def set_parallel(enabled: bool = True) -> None:
    """Let the wrappers use the parallel kernels above their size thresholds
    (``True``, the default) or always the serial ones (``False``)."""
    for name, (mod, default) in _DEFAULT_THRESHOLDS.items():
        setattr(mod, name, default if enabled else _NEVER)


def parallel_enabled() -> bool:
    """Whether the parallel kernels are in use (see ``set_parallel``)."""
    return any(getattr(mod, name) < _NEVER for name, (mod, _) in _DEFAULT_THRESHOLDS.items())


def _tbb_layer() -> bool:
    """Whether Numba's parallel regions run (or will run) on TBB."""
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False):
        import numba

        return numba.threading_layer() == "tbb"
    from numba import config

    if config.THREADING_LAYER not in ("default", "safe", "threadsafe", "forksafe", "tbb"):
        return False  # an explicit "omp" or "workqueue"
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401  (loads libtbb, starts nothing)
    except Exception:  # ImportError or a TBB too old/new for this Numba
        return False
    return True


def _initial_parallel() -> bool:
    env = _os.environ.get("MINICNN_CPU_PARALLEL", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    from numba import config

    return config.NUMBA_NUM_THREADS > 1 and _tbb_layer()


set_parallel(_initial_parallel())

__all__ = ["TABLE", "CONV_SCHEDULE", "set_parallel", "parallel_enabled", *TABLE]
