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

// One thread per column element; flat cols index = ((((n*C + c)*kh + i)*kw + j)*OH + oh)*OW + ow.
template <typename T, typename I>
__device__ __forceinline__ void im2col_body(const T* __restrict__ x, T* __restrict__ cols,
                                            long long total, I H, I W, I kh, I kw, I sh, I sw,
                                            I ph, I pw, I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I ow = r % OW;
        r /= OW;
        const I oh = r % OH;
        r /= OH;
        const I j = r % kw;
        r /= kw;
        const I i = r % kh;
        const I nc = r / kh;  // n*C + c
        const I h = oh * sh - ph + i;
        const I w = ow * sw - pw + j;
        T v = T(0);
        if (h >= 0 && h < H && w >= 0 && w < W) v = x[(nc * H + h) * W + w];
        cols[t] = v;
    }
}

// One thread per image pixel (n, c, h, w). With hp = h + ph, the taps that
// touch it are (i, oh) with i = hp - oh*sh in [0, kh) and oh in [0, OH), i.e.
// oh in [oh_lo, oh_hi]; i ascending is oh descending. Likewise for w.
template <typename T, typename I>
__device__ __forceinline__ void col2im_body(const T* __restrict__ cols, T* __restrict__ x,
                                            long long total, I H, I W, I kh, I kw, I sh, I sw,
                                            I ph, I pw, I OH, I OW) {
    const I OHW = OH * OW;
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I w = r % W;
        r /= W;
        const I h = r % H;
        const I nc = r / H;
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
            const T* row = cols + (nc * kh + i) * kw * OHW + oh * OW;
            for (I ow = ow_hi; ow >= ow_lo; --ow) {
                const I j = wp - ow * sw;
                acc += row[j * OHW + ow];
            }
        }
        x[t] = acc;
    }
}

// im2col into the wide layout: flat cols index = ((((c*kh + i)*kw + j)*N + n)*OH + oh)*OW + ow.
template <typename T, typename I>
__device__ __forceinline__ void im2col_wide_body(const T* __restrict__ x, T* __restrict__ cols,
                                                 long long total, I N, I C, I H, I W, I kh, I kw,
                                                 I sh, I sw, I ph, I pw, I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I ow = r % OW;
        r /= OW;
        const I oh = r % OH;
        r /= OH;
        const I n = r % N;
        r /= N;
        const I j = r % kw;
        r /= kw;
        const I i = r % kh;
        const I c = r / kh;
        const I h = oh * sh - ph + i;
        const I w = ow * sw - pw + j;
        T v = T(0);
        if (h >= 0 && h < H && w >= 0 && w < W) v = x[((n * C + c) * H + h) * W + w];
        cols[t] = v;
    }
}

// col2im from the wide layout: the gather of col2im_body, reading row (c, i, j) at column
// n*OH*OW + oh*OW + ow; the same taps in the same order.
template <typename T, typename I>
__device__ __forceinline__ void col2im_wide_body(const T* __restrict__ cols, T* __restrict__ x,
                                                 long long total, I N, I C, I H, I W, I kh, I kw,
                                                 I sh, I sw, I ph, I pw, I OH, I OW) {
    const I OHW = OH * OW;
    const I NOHW = N * OHW;
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I w = r % W;
        r /= W;
        const I h = r % H;
        r /= H;
        const I c = r % C;
        const I n = r / C;
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
            const T* row = cols + ((c * kh + i) * kw) * NOHW + n * OHW + oh * OW;
            for (I ow = ow_hi; ow >= ow_lo; --ow) {
                const I j = wp - ow * sw;
                acc += row[j * NOHW + ow];
            }
        }
        x[t] = acc;
    }
}

}  // namespace minicnn

#define MINICNN_CONV_WIDE_KERNELS(SUF, T, I)                                                    \
    extern "C" __global__ void im2col_wide_##SUF(const T* __restrict__ x, T* __restrict__ cols, \
                                                 long long total, long long N, long long C,     \
                                                 long long H, long long W, long long kh,        \
                                                 long long kw, long long sh, long long sw,      \
                                                 long long ph, long long pw, long long OH,      \
                                                 long long OW) {                                \
        minicnn::im2col_wide_body<T, I>(x, cols, total, (I)N, (I)C, (I)H, (I)W, (I)kh, (I)kw,  \
                                        (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);              \
    }                                                                                           \
    extern "C" __global__ void col2im_wide_##SUF(const T* __restrict__ cols, T* __restrict__ x, \
                                                 long long total, long long N, long long C,     \
                                                 long long H, long long W, long long kh,        \
                                                 long long kw, long long sh, long long sw,      \
                                                 long long ph, long long pw, long long OH,      \
                                                 long long OW) {                                \
        minicnn::col2im_wide_body<T, I>(cols, x, total, (I)N, (I)C, (I)H, (I)W, (I)kh, (I)kw,  \
                                        (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);              \
    }

#define MINICNN_CONV_KERNELS(SUF, T, I)                                                         \
    extern "C" __global__ void im2col_##SUF(const T* __restrict__ x, T* __restrict__ cols,      \
                                            long long total, long long H, long long W,          \
                                            long long kh, long long kw, long long sh,           \
                                            long long sw, long long ph, long long pw,           \
                                            long long OH, long long OW) {                       \
        minicnn::im2col_body<T, I>(x, cols, total, (I)H, (I)W, (I)kh, (I)kw, (I)sh, (I)sw,     \
                                   (I)ph, (I)pw, (I)OH, (I)OW);                                 \
    }                                                                                           \
    extern "C" __global__ void col2im_##SUF(const T* __restrict__ cols, T* __restrict__ x,      \
                                            long long total, long long H, long long W,          \
                                            long long kh, long long kw, long long sh,           \
                                            long long sw, long long ph, long long pw,           \
                                            long long OH, long long OW) {                       \
        minicnn::col2im_body<T, I>(cols, x, total, (I)H, (I)W, (I)kh, (I)kw, (I)sh, (I)sw,     \
                                   (I)ph, (I)pw, (I)OH, (I)OW);                                 \
    }

MINICNN_CONV_KERNELS(f32_i32, float, int)
MINICNN_CONV_KERNELS(f32_i64, float, long long)
MINICNN_CONV_KERNELS(f64_i32, double, int)
MINICNN_CONV_KERNELS(f64_i64, double, long long)
MINICNN_CONV_WIDE_KERNELS(f32_i32, float, int)
MINICNN_CONV_WIDE_KERNELS(f32_i64, float, long long)
MINICNN_CONV_WIDE_KERNELS(f64_i32, double, int)
MINICNN_CONV_WIDE_KERNELS(f64_i64, double, long long)
