"""Reference kernels: plain array code, the readable definition of every kernel.

These run on NumPy (the ``numpy`` backend) and, being written against the
array module of their input, on CuPy too wherever a CUDA kernel is missing.
The Numba and CUDA kernels must produce the same numbers (tests compare them).

Shapes (all NCHW, C-contiguous results):

=====================  ======================================================
im2col                 x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW)
col2im                 cols (N, C*kh*kw, OH*OW) -> x (N, C, H, W), summing
                       overlapping taps (the adjoint of im2col)
                       (both take an optional ``out=``: a C-contiguous array
                       of the result's shape and dtype to write into)
im2col_wide            x (N, C, H, W) -> cols (C*kh*kw, N*OH*OW): the batch's
                       blocks side by side (column n*OH*OW + l); col2im_wide
                       its adjoint, cols -> x (N, C, H, W)
maxpool2d_forward      x (N, C, H, W) -> out, idx (N, C, OH, OW); idx is the
                       flat offset h*W + w of the max inside its (H, W) plane
                       (PyTorch's convention); padding counts as -inf; ties
                       take the first maximum in row-major window order
maxpool2d_backward     dout, idx (N, C, OH, OW), H, W [, kh, kw, sh, sw, ph, pw]
                       -> dx (N, C, H, W), summing when overlapping windows
                       share a maximum
maxunpool2d_forward    x, idx (N, C, H, W) -> out (N, C, OH, OW), zeros except
                       out.flat-in-plane[idx] = x
maxunpool2d_backward   dout (N, C, OH, OW), idx (N, C, H, W) -> dx (N, C, H, W)
relu_forward           x -> (y, mask) with mask = x > 0 (bool)
relu_backward          dy, mask -> dx
leaky_relu_forward     x, slope -> (y, mask);  leaky_relu_backward(dy, mask, slope)
elu_forward            x, alpha -> y;  elu_backward(dy, y, alpha) (uses the output)
gelu_forward           x, approximate ('none' | 'tanh') -> y
gelu_backward          dy, x, approximate -> dx
dropout_forward        x, u, p -> (y, mask): u holds uniform [0, 1) draws of
                       the mask's shape (x's, or (N, C, 1, ...) for channel
                       dropout); mask = (u >= p) / (1 - p) in x's dtype,
                       y = x * mask (broadcast); backward is dy * mask
batchnorm_forward      x (N, C, *), gamma, beta (C,) or None, eps -> (y, mean,
                       var, xhat, inv_std): training mode, statistics over
                       every axis but 1, var biased; mean, var, inv_std (C,)
batchnorm_backward     dy, xhat (N, C, *), inv_std, gamma (C,) or None
                       -> (dx, dgamma, dbeta)
batchnorm_forward_eval x (N, C, *), gamma, beta (C,) or None, mean, var (C,),
                       eps -> (y, inv_std (C,)): evaluation mode, the given
                       (running) statistics (xhat is not kept)
sgd_update             in place: param, grad, buf, lr, momentum, dampening,
                       nesterov, weight_decay, first (bool: buf not yet set)
adam_update            in place: param, grad, exp_avg, exp_avg_sq, step (>=1),
                       lr, beta1, beta2, eps, weight_decay
cross_entropy_forward  logits (N, C), target (N,) integers, reduction ('mean' |
                       'sum') -> (loss 0-d, probs = softmax(logits) (N, C))
cross_entropy_backward probs (N, C), target (N,), scale (a number)
                       -> dlogits = (probs - onehot(target)) * scale
=====================  ======================================================

The optimiser updates follow PyTorch's single-tensor code path exactly.

Output sizes: OH = (H + 2*ph - kh) // sh + 1, likewise OW (``conv_out_size``; a
transposed convolution's is ``deconv_out_size``).
"""

from __future__ import annotations

from .activation import (
    elu_backward,
    elu_forward,
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
)
from .arrays import (  # noqa: F401 (the helpers are public here)
    _into,
    _library,
    _plane,
    _windows,
    _xp,
    array_module,
    check_cols_size,
    check_direct,
    check_geometry,
    check_out,
    conv_out_size,
    deconv_out_size,
    is_cupy,
)
from .loss import cross_entropy_backward, cross_entropy_forward
from .optim import adam_update, adam_update_multi, sgd_update, sgd_update_multi
from .pool import maxpool2d_backward, maxpool2d_forward, maxunpool2d_backward, maxunpool2d_forward
from .products import col2im, col2im_wide, im2col, im2col_wide, matmul
from .regularization import batchnorm_backward, batchnorm_forward, batchnorm_forward_eval, dropout_forward

TABLE = {
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
    "cross_entropy_forward": cross_entropy_forward,
    "cross_entropy_backward": cross_entropy_backward,
}
