// im2col / col2im for convolution (NCHW), float and double.
//
// Same numbers as minicnn.kernels.reference.im2col / col2im:
//   im2col: x (N, C, H, W) -> cols (N, C*kh*kw, OH*OW), row index (c, i, j),
//           taps that fall into the zero padding read 0;
//   col2im: the adjoint, cols -> x (N, C, H, W), summing overlapping taps.
//
//   im2col_wide / col2im_wide: the same with the batch's blocks side by side,
//           cols (C*kh*kw, N*OH*OW), column n*OH*OW + l (reference.im2col_wide).
//
//   conv2d_direct_forward: y (N, O, OH, OW) = the convolution of x with w (O, C, kh, kw)
//           (+ b), one thread per output element summing its C*kh*kw taps (c, i, j
//           ascending) straight from x: no column matrix (for layers with few taps
//           and channels, where im2col + GEMM moves far more memory than it computes);
//   conv2d_direct_input_grad: dx (N, C, H, W) from dy (N, O, OH, OW) and w, one
//           thread per input pixel summing o ascending, then its taps (i, j).
//           (With the roles of x and dy swapped these two are ConvTranspose2d's
//           input gradient and forward.)
//
// col2im is a gather: one thread owns one image pixel and adds the column
// entries that touch it in the reference's order (tap i ascending, then tap j
// ascending, starting from 0), so the result is deterministic and equal to the
// reference bit for bit. No atomics.
//
// Kernel names: <name>_<f32|f64>_<i32|i64>; the index suffix is the integer
// type of the flat-index decomposition (i32 only when every array involved
// has fewer than 2^31 elements). All size arguments are long long.
#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif

namespace minicnn {

// The image value under column entry (h, w) of plane nc = n*C + c, 0 in the zero padding.
template <typename T, typename I>
__device__ __forceinline__ T im2col_value(const T* __restrict__ x, I nc, I H, I W, I h, I w) {
    return (h >= 0 && h < H && w >= 0 && w < W) ? x[(nc * H + h) * W + w] : T(0);
}

// One thread per column element. Flat cols index:
//   standard (N, C*kh*kw, OH*OW): ((((n*C + c)*kh + i)*kw + j)*OH + oh)*OW + ow
//   WIDE (C*kh*kw, N*OH*OW):      ((((c*kh + i)*kw + j)*N + n)*OH + oh)*OW + ow
template <typename T, typename I, bool WIDE>
__device__ __forceinline__ void im2col_body(const T* __restrict__ x, T* __restrict__ cols,
                                            long long total, I N, I C, I H, I W, I kh, I kw,
                                            I sh, I sw, I ph, I pw, I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I ow = r % OW;
        r /= OW;
        const I oh = r % OH;
        r /= OH;
        I n = 0;
        if (WIDE) {
            n = r % N;
            r /= N;
        }
        const I j = r % kw;
        r /= kw;
        const I i = r % kh;
        const I q = r / kh;  // WIDE: c; standard: n*C + c
        const I nc = WIDE ? n * C + q : q;
        cols[t] = im2col_value(x, nc, H, W, oh * sh - ph + i, ow * sw - pw + j);
    }
}

// One thread per image pixel (n, c, h, w). With hp = h + ph, the taps that
// touch it are (i, oh) with i = hp - oh*sh in [0, kh) and oh in [0, OH), i.e.
// oh in [oh_lo, oh_hi]; i ascending is oh descending. Likewise for w. The
// column entry of tap (i, j) at (oh, ow) is taps[(i*kw + j)*tap_stride + oh*OW + ow],
// where taps points at tap (0, 0) of this pixel's plane (sample) and tap_stride
// is OH*OW (standard) or N*OH*OW (WIDE).
template <typename T, typename I, bool WIDE>
__device__ __forceinline__ void col2im_body(const T* __restrict__ cols, T* __restrict__ x,
                                            long long total, I N, I C, I H, I W, I kh, I kw,
                                            I sh, I sw, I ph, I pw, I OH, I OW) {
    const I OHW = OH * OW;
    const I tap_stride = WIDE ? N * OHW : OHW;
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I w = r % W;
        r /= W;
        const I h = r % H;
        const I nc = r / H;
        const T* taps = WIDE ? cols + (nc % C) * kh * kw * tap_stride + (nc / C) * OHW
                             : cols + nc * kh * kw * OHW;
        const I hp = h + ph;
        const I wp = w + pw;
        I oh_hi = hp / sh;
        if (oh_hi > OH - 1) oh_hi = OH - 1;
        const I oh_lo = hp >= kh ? (hp - kh) / sh + 1 : I(0);
        I ow_hi = wp / sw;
        if (ow_hi > OW - 1) ow_hi = OW - 1;
        const I ow_lo = wp >= kw ? (wp - kw) / sw + 1 : I(0);
        T acc = T(0);
        for (I oh = oh_hi; oh >= oh_lo; --oh) {
            const I i = hp - oh * sh;
            const T* row = taps + i * kw * tap_stride + oh * OW;
            for (I ow = ow_hi; ow >= ow_lo; --ow) {
                const I j = wp - ow * sw;
                acc += row[j * tap_stride + ow];
            }
        }
        x[t] = acc;
    }
}

// One thread per output element (n, o, oh, ow); taps in the zero padding are skipped.
template <typename T, typename I>
__device__ __forceinline__ void conv_direct_fwd_body(const T* __restrict__ x, const T* __restrict__ w,
                                                     const T* __restrict__ b, T* __restrict__ y,
                                                     long long total, I C, I H, I W, I O, I kh, I kw,
                                                     I sh, I sw, I ph, I pw, I OH, I OW,
                                                     int has_bias) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I ow = r % OW;
        r /= OW;
        const I oh = r % OH;
        r /= OH;
        const I o = r % O;
        const I n = r / O;
        const T* wo = w + o * C * kh * kw;
        T acc = T(0);
        for (I c = 0; c < C; ++c) {
            const T* xc = x + (n * C + c) * H * W;
            for (I i = 0; i < kh; ++i) {
                const I h = oh * sh - ph + i;
                if (h < 0 || h >= H) continue;
                for (I j = 0; j < kw; ++j) {
                    const I wx = ow * sw - pw + j;
                    if (wx < 0 || wx >= W) continue;
                    acc += xc[h * W + wx] * wo[(c * kh + i) * kw + j];
                }
            }
        }
        y[t] = has_bias ? acc + b[o] : acc;
    }
}

// One thread per input pixel (n, c, h, w): the output positions (oh, ow) whose window
// covers it through tap (i, j) are oh = (h + ph - i) / sh when that divides, likewise ow.
template <typename T, typename I>
__device__ __forceinline__ void conv_direct_dx_body(const T* __restrict__ dy, const T* __restrict__ w,
                                                    T* __restrict__ dx, long long total, I C, I H,
                                                    I W, I O, I kh, I kw, I sh, I sw, I ph, I pw,
                                                    I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I x0 = r % W;
        r /= W;
        const I h = r % H;
        r /= H;
        const I c = r % C;
        const I n = r / C;
        T acc = T(0);
        for (I o = 0; o < O; ++o) {
            const T* d = dy + (n * O + o) * OH * OW;
            const T* wc = w + (o * C + c) * kh * kw;
            for (I i = 0; i < kh; ++i) {
                const I hp = h + ph - i;
                if (hp < 0 || hp % sh != 0 || hp / sh >= OH) continue;
                const I oh = hp / sh;
                for (I j = 0; j < kw; ++j) {
                    const I wp = x0 + pw - j;
                    if (wp < 0 || wp % sw != 0 || wp / sw >= OW) continue;
                    acc += d[oh * OW + wp / sw] * wc[i * kw + j];
                }
            }
        }
        dx[t] = acc;
    }
}

}  // namespace minicnn

// Direct convolution: (x, w, b, y, total, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW, has_bias)
// and (dy, w, dx, total, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW); b may be any pointer
// when has_bias is 0.
#define MINICNN_CONV_DIRECT_KERNELS(SUF, T, I)                                                  \
    extern "C" __global__ void conv2d_direct_forward_##SUF(                                     \
        const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,               \
        T* __restrict__ y, long long total, long long C, long long H, long long W, long long O,  \
        long long kh, long long kw, long long sh, long long sw, long long ph, long long pw,      \
        long long OH, long long OW, int has_bias) {                                              \
        minicnn::conv_direct_fwd_body<T, I>(x, w, b, y, total, (I)C, (I)H, (I)W, (I)O, (I)kh,   \
                                            (I)kw, (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW,     \
                                            has_bias);                                           \
    }                                                                                            \
    extern "C" __global__ void conv2d_direct_input_grad_##SUF(                                  \
        const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx, long long total,  \
        long long C, long long H, long long W, long long O, long long kh, long long kw,          \
        long long sh, long long sw, long long ph, long long pw, long long OH, long long OW) {    \
        minicnn::conv_direct_dx_body<T, I>(dy, w, dx, total, (I)C, (I)H, (I)W, (I)O, (I)kh,     \
                                           (I)kw, (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);     \
    }

// Standard kernels: (x|cols, out, total, H, W, kh, kw, sh, sw, ph, pw, OH, OW);
// wide kernels take N and C after total.
#define MINICNN_CONV_KERNELS(SUF, T, I)                                                         \
    extern "C" __global__ void im2col_##SUF(const T* __restrict__ x, T* __restrict__ cols,      \
                                            long long total, long long H, long long W,          \
                                            long long kh, long long kw, long long sh,           \
                                            long long sw, long long ph, long long pw,           \
                                            long long OH, long long OW) {                       \
        minicnn::im2col_body<T, I, false>(x, cols, total, (I)1, (I)1, (I)H, (I)W, (I)kh, (I)kw, \
                                          (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);             \
    }                                                                                           \
    extern "C" __global__ void col2im_##SUF(const T* __restrict__ cols, T* __restrict__ x,      \
                                            long long total, long long H, long long W,          \
                                            long long kh, long long kw, long long sh,           \
                                            long long sw, long long ph, long long pw,           \
                                            long long OH, long long OW) {                       \
        minicnn::col2im_body<T, I, false>(cols, x, total, (I)1, (I)1, (I)H, (I)W, (I)kh, (I)kw, \
                                          (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);             \
    }                                                                                           \
    extern "C" __global__ void im2col_wide_##SUF(const T* __restrict__ x, T* __restrict__ cols, \
                                                 long long total, long long N, long long C,     \
                                                 long long H, long long W, long long kh,        \
                                                 long long kw, long long sh, long long sw,      \
                                                 long long ph, long long pw, long long OH,      \
                                                 long long OW) {                                \
        minicnn::im2col_body<T, I, true>(x, cols, total, (I)N, (I)C, (I)H, (I)W, (I)kh, (I)kw, \
                                         (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);             \
    }                                                                                           \
    extern "C" __global__ void col2im_wide_##SUF(const T* __restrict__ cols, T* __restrict__ x, \
                                                 long long total, long long N, long long C,     \
                                                 long long H, long long W, long long kh,        \
                                                 long long kw, long long sh, long long sw,      \
                                                 long long ph, long long pw, long long OH,      \
                                                 long long OW) {                                \
        minicnn::col2im_body<T, I, true>(cols, x, total, (I)N, (I)C, (I)H, (I)W, (I)kh, (I)kw, \
                                         (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);             \
    }

MINICNN_CONV_KERNELS(f32_i32, float, int)
MINICNN_CONV_KERNELS(f32_i64, float, long long)
MINICNN_CONV_KERNELS(f64_i32, double, int)
MINICNN_CONV_KERNELS(f64_i64, double, long long)
MINICNN_CONV_DIRECT_KERNELS(f32_i32, float, int)
MINICNN_CONV_DIRECT_KERNELS(f32_i64, float, long long)
MINICNN_CONV_DIRECT_KERNELS(f64_i32, double, int)
MINICNN_CONV_DIRECT_KERNELS(f64_i64, double, long long)
