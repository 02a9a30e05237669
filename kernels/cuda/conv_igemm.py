"""Implicit-GEMM convolution on the GPU (kernels in ``conv_igemm.cu``, their shared main loop in
``igemm_tile.cuh``): Conv2d's output (+ bias), input gradient and weight gradient as tiled
products whose tile loads gather straight from x and dy, so no column matrix is written.
float32 runs on the TF32 tensor cores where ``minicnn.backend.tf32.conv`` allows it (the
default, as PyTorch's cuDNN convolutions), else in exact FP32; float64 always exactly.

Shapes: x (N, C, H, W), w (O, C, kh, kw), b (O,), y and dy (N, O, OH, OW), OH/OW as
``reference.conv_out_size``. The signatures are those of the direct kernels (``conv.py``:
``conv2d_direct``, ``conv2d_direct_input_grad``; the CPU's ``conv2d_direct_weight_grad``), so the
conv schedule runs them on its direct paths (``ConvSchedule(direct_max=)``; see
``kernels/cuda/__init__.py``, ``use_implicit_gemm``). float32 / float64 CuPy arrays of one dtype
with a valid geometry run the kernels; anything else runs the reference math.

The weight gradient's product sums over N*OH*OW, far longer than its O x C*kh*kw result is
wide, so that sum is cut into ``splits`` ranges computed by separate blocks (``split_plan``),
each into its own slice of a workspace, then added in order by ``igemm_sum_splits``: the same
splits for the same shape, so the result is deterministic.
"""

from __future__ import annotations

from minicnn.kernels import reference as _ref

from . import launch
from .conv import _write, conv_forward, conv_input_grad
from .launch import _geometry, _i64, _ix, _launch, _launch_blocks, _suffix

THREADS = 256  # conv_igemm.cu's THREADS: one block per tile of the product
AREA = 4096  # BM * BN: tiles of 64 x 64, 32 x 128 or 16 x 256 (kernels ``_m64``, ``_m32``, ``_m16``)
TILE_ROWS = (64, 32, 16)
STEP = 16  # BK: the sum advances this many terms per pass through shared memory
#: The weight gradient's split: enough blocks to fill a large GPU (132 SMs on an H100, two blocks
#: each), but at least MIN_SPLIT_STEPS steps of the sum per block and at most MAX_SPLITS slices.
#: The workspace, splits x O x C*kh*kw, stays small: 2.4 MB float32 for ResNet-20's 16-channel
#: layers at batch 128 (one tile, 256 splits), 4.1 MB for Net2's conv3 at batch 256 (50 tiles, 5 splits).
TARGET_BLOCKS = 264
MIN_SPLIT_STEPS = 8
MAX_SPLITS = 256


def arithmetic(dtype) -> str:
    """The kernels' arithmetic for ``dtype``: "f64", "f32", or "tf32" (float32 on the TF32 tensor
    cores) where ``minicnn.backend.tf32.conv`` allows it, as PyTorch's cuDNN convolutions do."""
    sfx = _suffix(dtype)
    if sfx == "f32":
        from minicnn.backend import tf32

        if tf32.conv:
            return "tf32"
    return sfx


def tile_rows(m: int) -> int:
    """The tile height BM for a product with m rows (a layer's channel count): the one that pads m
    least (16 rows: 16 x 256 tiles), the taller on a tie (more reuse of each loaded column)."""
    return min(TILE_ROWS, key=lambda bm: -(-m // bm) * bm)


def _tiles(m: int, p: int) -> int:
    bm = tile_rows(m)
    return -(-m // bm) * -(-p // (AREA // bm))


def split_plan(o: int, p: int, k: int) -> tuple[int, int]:
    """(splits, chunk) of the weight gradient's sum of k terms for an (o, p) result: chunk a
    multiple of ``STEP``, splits = ceil(k / chunk), every split non-empty."""
    if k <= 0:
        return 1, STEP
    want = max(1, min(MAX_SPLITS, TARGET_BLOCKS // _tiles(o, p), k // (STEP * MIN_SPLIT_STEPS)))
    chunk = -(-(-(-k // want)) // STEP) * STEP
    return -(-k // chunk), chunk


_LAUNCHES: dict = {}  # (kind, sizes, arithmetic) -> (kernel, blocks, the sizes as kernel arguments)
_LAUNCHES_MAX = 4096  # forgotten all at once beyond this (a model that keeps changing shapes), as gemm.py's plans


def _launch_plan(kind: str, sizes: tuple, arith: str, rows: int, cols: int, index_sizes) -> tuple:
    """The kernel name, block count and size arguments of a ``kind`` launch, worked out once per
    shape (the name, the tiles and 13-15 NumPy scalars were ~10 us of Python per call, about half
    of a call's host time with the launch itself stubbed)."""
    key = (kind, sizes, arith)
    plan = _LAUNCHES.get(key)
    if plan is None:
        if len(_LAUNCHES) >= _LAUNCHES_MAX:
            _LAUNCHES.clear()
        kernel = f"conv2d_igemm_{kind}_m{tile_rows(rows)}_{arith}_{_ix(*index_sizes)}"
        plan = _LAUNCHES[key] = (kernel, _tiles(rows, cols), tuple(map(_i64, sizes)))
    return plan


def conv2d_igemm(x, w, b, stride, padding, out=None):
    """y (N, O, OH, OW) = Conv2d of x (N, C, H, W) with w (O, C, kh, kw) (+ b (O,)), as one tiled
    product over the whole batch. ``out``: an optional C-contiguous device array of y's shape and
    dtype to write into."""

    def run(x, w, bias, y, sizes, has_bias):
        n, _, _, _, o, *_rest, oh, ow = sizes
        kernel, blocks, args = _launch_plan("forward", sizes, arithmetic(x.dtype), o, n * oh * ow,
                                            (x.size, y.size, w.size))
        _launch_blocks("conv_igemm", kernel, blocks, THREADS, (x, w, bias, y, *args, launch._i32(has_bias)))

    return conv_forward("conv2d_igemm", x, w, b, stride, padding, out, run)


def conv2d_igemm_input_grad(dy, w, h, wd, stride, padding, out=None):
    """dx (N, C, h, wd) of a Conv2d from dy (N, O, OH, OW) and w (O, C, kh, kw), as one tiled product
    whose loads gather dy through the taps. ``out`` as for ``conv2d_igemm``."""

    def run(dy, w, dx, sizes):
        n, c, h, wd = sizes[:4]
        kernel, blocks, args = _launch_plan("input_grad", sizes, arithmetic(dy.dtype), c, n * h * wd,
                                            (dx.size, dy.size, w.size))
        _launch_blocks("conv_igemm", kernel, blocks, THREADS, (dy, w, dx, *args))

    return conv_input_grad("conv2d_igemm_input_grad", dy, w, h, wd, stride, padding, out, run)


def conv2d_igemm_weight_grad(x, dy, kh, kw, stride, padding, out=None):
    """dW (O, C, kh, kw) of a Conv2d from its input x (N, C, H, W) and dy (N, O, OH, OW): the product
    dy (O, N*OH*OW) @ cols(x)^T, its sum split over blocks (``split_plan``). ``out``: an optional
    C-contiguous device array of dW's shape and dtype to write into."""
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = int(kh), int(kw)
    if x.ndim != 4:
        raise ValueError(f"conv2d_igemm_weight_grad: input of shape {tuple(x.shape)}, expected (N, C, H, W)")
    n, c, h, wd = (int(s) for s in x.shape)
    want = _ref.check_geometry("conv2d_igemm_weight_grad", kh, kw, sh, sw, ph, pw, h, wd)
    if dy.ndim != 4 or int(dy.shape[0]) != n or tuple(int(s) for s in dy.shape[2:]) != want:
        raise ValueError(f"conv2d_igemm_weight_grad: gradient of shape {tuple(dy.shape)} does not fit input "
                         f"{tuple(x.shape)}; expected ({n}, O, {want[0]}, {want[1]})")
    o = int(dy.shape[1])
    oh, ow = want
    wshape = (o, c, kh, kw)
    if not (launch._on_device(x, dy) and _suffix(x.dtype) is not None and x.dtype == dy.dtype
            and _geometry(kh, kw, sh, sw, ph, pw) is not None and min(n, o, c) >= 1):
        cols = _ref.im2col(x, kh, kw, sh, sw, ph, pw)
        d = dy.reshape(n, o, oh * ow)
        dw = _ref.matmul(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(wshape)
        return _write("conv2d_igemm_weight_grad", out, dw, x)
    xp = launch._cupy()
    x, dy = xp.ascontiguousarray(x), xp.ascontiguousarray(dy)
    dw = xp.empty(wshape, dtype=x.dtype) if out is None else \
        _ref.check_out("conv2d_igemm_weight_grad", out, wshape, x.dtype, like=x)
    p = c * kh * kw
    splits, chunk = split_plan(o, p, n * oh * ow)
    dest = dw if splits == 1 else xp.empty((splits, o, p), dtype=x.dtype)
    sizes = (n, c, h, wd, o, kh, kw, sh, sw, ph, pw, oh, ow, splits, chunk)
    kernel, blocks, args = _launch_plan("weight_grad", sizes, arithmetic(x.dtype), o, p, (x.size, dy.size, dest.size))
    _launch_blocks("conv_igemm", kernel, splits * blocks, THREADS, (x, dy, dest, *args))
    if splits > 1:
        _launch("conv_igemm", f"igemm_sum_splits_{_suffix(x.dtype)}", dw.size, (dest, dw, _i64(dw.size), _i64(splits)))
    return dw
