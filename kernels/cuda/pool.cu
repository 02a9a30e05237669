// Max pooling and max unpooling (NCHW), float and double.
//
// Same numbers as minicnn.kernels.reference:
//   maxpool2d_forward   x (N, C, H, W) -> out, idx (N, C, OH, OW); idx is the
//                       int64 flat offset h*W + w inside the unpadded plane;
//                       padding counts as -inf; ties keep the first maximum in
//                       row-major window order; a NaN counts as the maximum
//                       (the first NaN, as numpy's argmax);
//   maxpool2d_backward  dout, idx -> dx (N, C, H, W), summing where windows
//                       share a maximum;
//   maxunpool2d_forward x, idx (N, C, H, W) -> out (N, C, OH, OW), zeros except
//                       out[plane, idx] = x (the last of duplicates wins, as
//                       numpy's fancy assignment);
//   maxunpool2d_backward dout (N, C, OH, OW), idx (N, C, H, W) -> dx = dout[plane, idx];
//   relu_maxpool2d_forward / _backward: kernels/fused.py's fused ReLU -> max-pool.
//
// Everything that the reference writes as a scatter is a gather here:
//   * maxpool2d_backward_*: one thread per input pixel sums, in double and in
//     increasing output order (the reference's bincount order), dout over the
//     windows that contain the pixel and whose idx is the pixel. It needs the
//     window geometry; maxpool2d_backward_planes_* is the fallback when only
//     (dout, idx, H, W) are known: one thread per (n, c) plane walks the plane's
//     outputs in order into a double workspace. Both equal the reference bit for
//     bit.
//   * maxunpool2d_forward: maxunpool2d_claim_* records, per output pixel, the
//     largest in-plane input position that targets it (integer atomicMax; the
//     result does not depend on thread order), then maxunpool2d_gather_* has
//     one thread per output pixel read that winner or write 0.
// Out-of-range idx entries are skipped (the unpool backward reads 0 for them).
//
// Kernel names with an index suffix (_i32/_i64) decompose flat indices with
// int or long long arithmetic; the loader uses i32 only when every array
// involved has fewer than 2^31 elements. All size arguments are long long.
#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif

namespace minicnn {

// One thread per output (n, c, oh, ow).
template <typename T, typename I>
__device__ __forceinline__ void maxpool_fwd_body(const T* __restrict__ x, T* __restrict__ out,
                                                 long long* __restrict__ idx, long long total,
                                                 I H, I W, I kh, I kw, I sh, I sw, I ph, I pw,
                                                 I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I ow = r % OW;
        r /= OW;
        const I oh = r % OH;
        const I nc = r / OH;
        const I hs = oh * sh - ph;
        const I ws = ow * sw - pw;
        const T* plane = x + nc * H * W;
        // State after the first tap if it were padding: -inf at its position.
        // A padded tap (-inf) never replaces anything after that.
        T best = m_neg_inf(T(0));
        I best_pos = hs * W + ws;
        for (I i = 0; i < kh; ++i) {
            const I h = hs + i;
            if (h < 0 || h >= H) continue;
            for (I j = 0; j < kw; ++j) {
                const I w = ws + j;
                if (w < 0 || w >= W) continue;
                const I pos = h * W + w;
                const T v = plane[pos];
                if (v > best || (m_isnan(v) && !m_isnan(best))) {
                    best = v;
                    best_pos = pos;
                }
            }
        }
        out[t] = best;
        idx[t] = (long long)best_pos;
    }
}

// One thread per input pixel (n, c, h, w); windows oh in [oh_lo, oh_hi]
// contain row h (as in col2im), visited in increasing (oh, ow) order.
template <typename T, typename I>
__device__ __forceinline__ void maxpool_bwd_body(const T* __restrict__ dout,
                                                 const long long* __restrict__ idx,
                                                 T* __restrict__ dx, long long total, I H, I W,
                                                 I kh, I kw, I sh, I sw, I ph, I pw, I OH, I OW) {
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
        const long long target = (long long)(h * W + w);
        double acc = 0.0;
        for (I oh = oh_lo; oh <= oh_hi; ++oh) {
            const I row = (nc * OH + oh) * OW;
            for (I ow = ow_lo; ow <= ow_hi; ++ow) {
                if (idx[row + ow] == target) acc += (double)dout[row + ow];
            }
        }
        dx[t] = (T)acc;
    }
}

// One thread per (n, c) plane; ws is a double workspace of the size of dx (it
// may be dx itself when T is double).
template <typename T, typename I>
__device__ __forceinline__ void maxpool_bwd_planes_body(const T* __restrict__ dout,
                                                        const long long* __restrict__ idx,
                                                        double* ws, T* dx, long long planes,
                                                        I HW, I OHW) {
    MINICNN_GRID_STRIDE(p, planes) {
        const I base_in = (I)p * HW;
        const I base_out = (I)p * OHW;
        for (I k = 0; k < HW; ++k) ws[base_in + k] = 0.0;
        for (I o = 0; o < OHW; ++o) {
            const long long target = idx[base_out + o];
            if (target >= 0 && target < (long long)HW)
                ws[base_in + (I)target] += (double)dout[base_out + o];
        }
        for (I k = 0; k < HW; ++k) dx[base_in + k] = (T)ws[base_in + k];
    }
}

// One thread per input element e = (n, c, k): claim out pixel idx[e] with k + 1.
template <typename I>
__device__ __forceinline__ void unpool_claim_body(const long long* __restrict__ idx,
                                                  unsigned long long* __restrict__ winner,
                                                  long long total, I HW, I OHW) {
    MINICNN_GRID_STRIDE(e, total) {
        const I ei = (I)e;
        const I nc = ei / HW;
        const I k = ei - nc * HW;
        const long long target = idx[e];
        if (target >= 0 && target < (long long)OHW)
            atomicMax(&winner[nc * OHW + (I)target], (unsigned long long)k + 1ULL);
    }
}

// One thread per output pixel o = (n, c, q): out = x[n, c, winner - 1] or 0.
template <typename T, typename I>
__device__ __forceinline__ void unpool_gather_body(const T* __restrict__ x,
                                                   const unsigned long long* __restrict__ winner,
                                                   T* __restrict__ out, long long total, I HW,
                                                   I OHW) {
    MINICNN_GRID_STRIDE(o, total) {
        const I oi = (I)o;
        const I nc = oi / OHW;
        const unsigned long long wv = winner[o];
        out[o] = wv ? x[nc * HW + (I)(wv - 1ULL)] : T(0);
    }
}

// One thread per input element e = (n, c, k): dx = dout[n, c, idx[e]].
template <typename T, typename I>
__device__ __forceinline__ void unpool_bwd_body(const T* __restrict__ dout,
                                                const long long* __restrict__ idx,
                                                T* __restrict__ dx, long long total, I HW,
                                                I OHW) {
    MINICNN_GRID_STRIDE(e, total) {
        const I ei = (I)e;
        const I nc = ei / HW;
        const long long target = idx[e];
        dx[e] = (target >= 0 && target < (long long)OHW) ? dout[nc * OHW + (I)target] : T(0);
    }
}

// relu_maxpool2d (kernels/fused.py): ReLU then a max-pool whose (kh, kw) windows tile the
// input (stride == kernel, no padding), in one pass. relu(v) = v <= 0 ? +0 : v (NaN passes,
// as numpy's maximum(v, 0)); the window rule is maxpool_fwd_body's.
template <typename T>
__device__ __forceinline__ T relu_value(T v) {
    return v <= T(0) ? T(0) : v;
}

// One thread per output (n, c, oh, ow).
template <typename T, typename I>
__device__ __forceinline__ void relu_maxpool_fwd_body(const T* __restrict__ x, T* __restrict__ out,
                                                      long long* __restrict__ idx, long long total,
                                                      I H, I W, I kh, I kw, I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I ow = r % OW;
        r /= OW;
        const I oh = r % OH;
        const I nc = r / OH;
        const T* plane = x + nc * H * W;
        I best_pos = oh * kh * W + ow * kw;
        T best = relu_value(plane[best_pos]);
        for (I i = 0; i < kh; ++i) {
            for (I j = 0; j < kw; ++j) {
                const I pos = (oh * kh + i) * W + ow * kw + j;
                const T v = relu_value(plane[pos]);
                if (v > best || (m_isnan(v) && !m_isnan(best))) {
                    best = v;
                    best_pos = pos;
                }
            }
        }
        out[t] = best;
        idx[t] = (long long)best_pos;
    }
}

// One thread per input pixel (n, c, h, w): the one window holding it passes dout
// when its switch is this pixel and its output is positive (0 + dout: -0.0 lands as
// +0.0, as in the reference's sum); pixels of no window (the remainder rows and
// columns) get 0.
template <typename T, typename I>
__device__ __forceinline__ void relu_maxpool_bwd_body(const T* __restrict__ dout,
                                                      const T* __restrict__ out,
                                                      const long long* __restrict__ idx,
                                                      T* __restrict__ dx, long long total, I H,
                                                      I W, I kh, I kw, I OH, I OW) {
    MINICNN_GRID_STRIDE(t, total) {
        I r = (I)t;
        const I w = r % W;
        r /= W;
        const I h = r % H;
        const I nc = r / H;
        const I oh = h / kh;
        const I ow = w / kw;
        T g = T(0);
        if (oh < OH && ow < OW) {
            const I o = (nc * OH + oh) * OW + ow;
            if (idx[o] == (long long)(h * W + w) && out[o] > T(0)) g = T(0) + dout[o];
        }
        dx[t] = g;
    }
}

}  // namespace minicnn

#define MINICNN_POOL_KERNELS(SUF, T, I)                                                          \
    extern "C" __global__ void maxpool2d_forward_##SUF(                                          \
        const T* __restrict__ x, T* __restrict__ out, long long* __restrict__ idx,               \
        long long total, long long H, long long W, long long kh, long long kw, long long sh,     \
        long long sw, long long ph, long long pw, long long OH, long long OW) {                  \
        minicnn::maxpool_fwd_body<T, I>(x, out, idx, total, (I)H, (I)W, (I)kh, (I)kw, (I)sh,     \
                                        (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);                      \
    }                                                                                            \
    extern "C" __global__ void maxpool2d_backward_##SUF(                                         \
        const T* __restrict__ dout, const long long* __restrict__ idx, T* __restrict__ dx,       \
        long long total, long long H, long long W, long long kh, long long kw, long long sh,     \
        long long sw, long long ph, long long pw, long long OH, long long OW) {                  \
        minicnn::maxpool_bwd_body<T, I>(dout, idx, dx, total, (I)H, (I)W, (I)kh, (I)kw, (I)sh,   \
                                        (I)sw, (I)ph, (I)pw, (I)OH, (I)OW);                      \
    }                                                                                            \
    extern "C" __global__ void maxpool2d_backward_planes_##SUF(                                  \
        const T* __restrict__ dout, const long long* __restrict__ idx, double* ws, T* dx,        \
        long long planes, long long HW, long long OHW) {                                         \
        minicnn::maxpool_bwd_planes_body<T, I>(dout, idx, ws, dx, planes, (I)HW, (I)OHW);        \
    }                                                                                            \
    extern "C" __global__ void maxunpool2d_gather_##SUF(                                         \
        const T* __restrict__ x, const unsigned long long* __restrict__ winner,                  \
        T* __restrict__ out, long long total, long long HW, long long OHW) {                     \
        minicnn::unpool_gather_body<T, I>(x, winner, out, total, (I)HW, (I)OHW);                 \
    }                                                                                            \
    extern "C" __global__ void maxunpool2d_backward_##SUF(                                       \
        const T* __restrict__ dout, const long long* __restrict__ idx, T* __restrict__ dx,       \
        long long total, long long HW, long long OHW) {                                          \
        minicnn::unpool_bwd_body<T, I>(dout, idx, dx, total, (I)HW, (I)OHW);                     \
    }                                                                                            \
    extern "C" __global__ void relu_maxpool2d_forward_##SUF(                                     \
        const T* __restrict__ x, T* __restrict__ out, long long* __restrict__ idx,               \
        long long total, long long H, long long W, long long kh, long long kw, long long OH,     \
        long long OW) {                                                                          \
        minicnn::relu_maxpool_fwd_body<T, I>(x, out, idx, total, (I)H, (I)W, (I)kh, (I)kw,       \
                                             (I)OH, (I)OW);                                      \
    }                                                                                            \
    extern "C" __global__ void relu_maxpool2d_backward_##SUF(                                    \
        const T* __restrict__ dout, const T* __restrict__ out, const long long* __restrict__ idx, \
        T* __restrict__ dx, long long total, long long H, long long W, long long kh,             \
        long long kw, long long OH, long long OW) {                                              \
        minicnn::relu_maxpool_bwd_body<T, I>(dout, out, idx, dx, total, (I)H, (I)W, (I)kh,       \
                                             (I)kw, (I)OH, (I)OW);                               \
    }

MINICNN_POOL_KERNELS(f32_i32, float, int)
MINICNN_POOL_KERNELS(f32_i64, float, long long)
MINICNN_POOL_KERNELS(f64_i32, double, int)
MINICNN_POOL_KERNELS(f64_i64, double, long long)

extern "C" __global__ void maxunpool2d_claim_i32(const long long* __restrict__ idx,
                                                 unsigned long long* __restrict__ winner,
                                                 long long total, long long HW, long long OHW) {
    minicnn::unpool_claim_body<int>(idx, winner, total, (int)HW, (int)OHW);
}

extern "C" __global__ void maxunpool2d_claim_i64(const long long* __restrict__ idx,
                                                 unsigned long long* __restrict__ winner,
                                                 long long total, long long HW, long long OHW) {
    minicnn::unpool_claim_body<long long>(idx, winner, total, HW, OHW);
}
