// Softmax cross-entropy, forward and backward, float and double: one launch each
// (the reference, minicnn.kernels.reference.cross_entropy_*, is a dozen array passes).
//
//   cross_entropy_forward  one thread per row n of logits (N, C):
//                            m = max_c logits[n, c]        (NaN propagates, as numpy's max)
//                            e_c = exp(logits[n, c] - m),  s = sum_c e_c  (c ascending)
//                            probs[n, c] = e_c / s
//                            nll[n] = -((logits[n, t] - m) - log(s)),  t = target[n];
//                                     NaN when t is not in [0, C) (no bounds error on a GPU)
//                          the loss is then sum_n nll[n] (/ N), one reduction by the caller
//   cross_entropy_backward one thread per element (n, c):
//                            dx[n, c] = (probs[n, c] - (c == target[n] ? 1 : 0)) * scale
//                          (the reference's order: subtract 1 at the label, then scale)
// Names: <name>_f32 / <name>_f64; target is int64; n, c and the element count are long long.
#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif

namespace minicnn {

template <typename T>
__device__ __forceinline__ void xent_fwd_body(const T* __restrict__ logits,
                                              const long long* __restrict__ target,
                                              T* __restrict__ probs, T* __restrict__ nll,
                                              long long n, long long c) {
    MINICNN_GRID_STRIDE(row, n) {
        const T* x = logits + row * c;
        T* p = probs + row * c;
        T m = x[0];
        for (long long k = 1; k < c; ++k) {
            const T v = x[k];
            if (v > m || m_isnan(v)) m = m_isnan(m) ? m : v;
        }
        T s = T(0);
        for (long long k = 0; k < c; ++k) {
            const T e = m_exp(x[k] - m);
            p[k] = e;
            s += e;
        }
        for (long long k = 0; k < c; ++k) p[k] = p[k] / s;
        const long long t = target[row];
        const T zero = T(0);
        nll[row] = (t >= 0 && t < c) ? -((x[t] - m) - m_log(s)) : zero / zero;  // 0 / 0: NaN
    }
}

template <typename T>
__device__ __forceinline__ void xent_bwd_body(const T* __restrict__ probs,
                                              const long long* __restrict__ target, T scale,
                                              T* __restrict__ dx, long long total, long long c) {
    MINICNN_GRID_STRIDE(i, total) {
        T v = probs[i];
        if (i % c == target[i / c]) v = v - T(1);
        dx[i] = v * scale;
    }
}

}  // namespace minicnn

#define MINICNN_LOSS_KERNELS(SUF, T)                                                            \
    extern "C" __global__ void cross_entropy_forward_##SUF(                                     \
        const T* __restrict__ logits, const long long* __restrict__ target,                      \
        T* __restrict__ probs, T* __restrict__ nll, long long n, long long c) {                  \
        minicnn::xent_fwd_body<T>(logits, target, probs, nll, n, c);                             \
    }                                                                                            \
    extern "C" __global__ void cross_entropy_backward_##SUF(                                    \
        const T* __restrict__ probs, const long long* __restrict__ target, T scale,              \
        T* __restrict__ dx, long long total, long long c) {                                      \
        minicnn::xent_bwd_body<T>(probs, target, scale, dx, total, c);                           \
    }

MINICNN_LOSS_KERNELS(f32, float)
MINICNN_LOSS_KERNELS(f64, double)
