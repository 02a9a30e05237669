// Elementwise activations, forward and backward, float and double.
//
// Same formulas, in the same operation order, as minicnn.kernels.reference
// (scalars such as slope/alpha arrive already cast to the array's type, as
// numpy casts a Python float against a float32 array):
//   relu_forward        y = x > 0 ? x : (NaN stays NaN, else +0); mask = x > 0
//   relu_backward       dx = mask ? dy : 0
//   add_relu_forward    relu_forward of a + b (kernels/fused.py; the sum is never stored)
//   leaky_relu_forward  y = x > 0 ? x : x * slope; mask = x > 0
//   leaky_relu_backward dx = mask ? dy : dy * slope
//   elu_forward         y = x > 0 ? x : alpha * expm1(min(x, 0))
//   elu_backward        dx = y > 0 ? dy : dy * (y + alpha)
//   gelu_forward        exact: 0.5 * x * (1 + erf(x / sqrt(2)));
//                       tanh:  0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
//   gelu_backward       dy * d/dx of the above
// Names: <name>_f32 / <name>_f64; n is the element count (long long);
// `approx_tanh` is 0 (exact, erf) or 1 (tanh). Masks are bool (1 byte).
#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif

namespace minicnn {

#define MINICNN_SQRT_2_OVER_PI 0.7978845608028654
#define MINICNN_INV_SQRT_2 0.7071067811865476
#define MINICNN_INV_SQRT_2PI 0.3989422804014327
#define MINICNN_GELU_C 0.044715
#define MINICNN_GELU_3C 0.134145  // 3 * 0.044715 as Python computes it

// min(x, 0) as numpy's minimum: NaN propagates, -0.0 gives +0.0.
template <typename T>
__device__ __forceinline__ T min0(T x) {
    return (x < T(0) || m_isnan(x)) ? x : T(0);
}

template <typename T>
__device__ __forceinline__ void relu_fwd_body(const T* __restrict__ x, T* __restrict__ y,
                                              bool* __restrict__ mask, long long n) {
    MINICNN_GRID_STRIDE(i, n) {
        const T v = x[i];
        const bool m = v > T(0);
        y[i] = (m || m_isnan(v)) ? v : T(0);
        mask[i] = m;
    }
}

template <typename T>
__device__ __forceinline__ void add_relu_fwd_body(const T* __restrict__ a, const T* __restrict__ b,
                                                  T* __restrict__ y, bool* __restrict__ mask, long long n) {
    MINICNN_GRID_STRIDE(i, n) {
        const T v = a[i] + b[i];
        const bool m = v > T(0);
        y[i] = (m || m_isnan(v)) ? v : T(0);
        mask[i] = m;
    }
}

template <typename T>
__device__ __forceinline__ void relu_bwd_body(const T* __restrict__ dy,
                                              const bool* __restrict__ mask, T* __restrict__ dx,
                                              long long n) {
    MINICNN_GRID_STRIDE(i, n) { dx[i] = mask[i] ? dy[i] : T(0); }
}

template <typename T>
__device__ __forceinline__ void leaky_fwd_body(const T* __restrict__ x, T slope,
                                               T* __restrict__ y, bool* __restrict__ mask,
                                               long long n) {
    MINICNN_GRID_STRIDE(i, n) {
        const T v = x[i];
        const bool m = v > T(0);
        y[i] = m ? v : v * slope;
        mask[i] = m;
    }
}

template <typename T>
__device__ __forceinline__ void leaky_bwd_body(const T* __restrict__ dy,
                                               const bool* __restrict__ mask, T slope,
                                               T* __restrict__ dx, long long n) {
    MINICNN_GRID_STRIDE(i, n) {
        const T g = dy[i];
        dx[i] = mask[i] ? g : g * slope;
    }
}

template <typename T>
__device__ __forceinline__ void elu_fwd_body(const T* __restrict__ x, T alpha,
                                             T* __restrict__ y, long long n) {
    MINICNN_GRID_STRIDE(i, n) {
        const T v = x[i];
        y[i] = v > T(0) ? v : alpha * m_expm1(min0(v));
    }
}

template <typename T>
__device__ __forceinline__ void elu_bwd_body(const T* __restrict__ dy, const T* __restrict__ y,
                                             T alpha, T* __restrict__ dx, long long n) {
    MINICNN_GRID_STRIDE(i, n) {
        const T yv = y[i];
        const T g = dy[i];
        dx[i] = yv > T(0) ? g : g * (yv + alpha);
    }
}

template <typename T>
__device__ __forceinline__ void gelu_fwd_body(const T* __restrict__ x, T* __restrict__ y,
                                              long long n, int approx_tanh) {
    const T half = T(0.5), one = T(1);
    MINICNN_GRID_STRIDE(i, n) {
        const T v = x[i];
        T s;
        if (approx_tanh) {
            const T inner = T(MINICNN_SQRT_2_OVER_PI) * (v + T(MINICNN_GELU_C) * (v * v * v));
            s = m_tanh(inner);
        } else {
            s = m_erf(v * T(MINICNN_INV_SQRT_2));
        }
        y[i] = half * v * (one + s);
    }
}

template <typename T>
__device__ __forceinline__ void gelu_bwd_body(const T* __restrict__ dy, const T* __restrict__ x,
                                              T* __restrict__ dx, long long n, int approx_tanh) {
    const T half = T(0.5), one = T(1);
    MINICNN_GRID_STRIDE(i, n) {
        const T v = x[i];
        T grad;
        if (approx_tanh) {
            const T inner = T(MINICNN_SQRT_2_OVER_PI) * (v + T(MINICNN_GELU_C) * (v * v * v));
            const T t = m_tanh(inner);
            const T d_inner = T(MINICNN_SQRT_2_OVER_PI) * (one + T(MINICNN_GELU_3C) * v * v);
            grad = half * (one + t) + half * v * (one - t * t) * d_inner;
        } else {
            const T cdf = half * (one + m_erf(v * T(MINICNN_INV_SQRT_2)));
            const T pdf = T(MINICNN_INV_SQRT_2PI) * m_exp(T(-0.5) * v * v);
            grad = cdf + v * pdf;
        }
        dx[i] = dy[i] * grad;
    }
}

}  // namespace minicnn

#define MINICNN_ACTIVATION_KERNELS(SUF, T)                                                      \
    extern "C" __global__ void relu_forward_##SUF(const T* __restrict__ x, T* __restrict__ y,   \
                                                  bool* __restrict__ mask, long long n) {       \
        minicnn::relu_fwd_body<T>(x, y, mask, n);                                               \
    }                                                                                           \
    extern "C" __global__ void add_relu_forward_##SUF(const T* __restrict__ a,                  \
                                                      const T* __restrict__ b, T* __restrict__ y, \
                                                      bool* __restrict__ mask, long long n) {     \
        minicnn::add_relu_fwd_body<T>(a, b, y, mask, n);                                          \
    }                                                                                           \
    extern "C" __global__ void relu_backward_##SUF(const T* __restrict__ dy,                    \
                                                   const bool* __restrict__ mask,               \
                                                   T* __restrict__ dx, long long n) {           \
        minicnn::relu_bwd_body<T>(dy, mask, dx, n);                                             \
    }                                                                                           \
    extern "C" __global__ void leaky_relu_forward_##SUF(const T* __restrict__ x, T slope,       \
                                                        T* __restrict__ y,                      \
                                                        bool* __restrict__ mask, long long n) { \
        minicnn::leaky_fwd_body<T>(x, slope, y, mask, n);                                       \
    }                                                                                           \
    extern "C" __global__ void leaky_relu_backward_##SUF(const T* __restrict__ dy,              \
                                                         const bool* __restrict__ mask,         \
                                                         T slope, T* __restrict__ dx,           \
                                                         long long n) {                         \
        minicnn::leaky_bwd_body<T>(dy, mask, slope, dx, n);                                     \
    }                                                                                           \
    extern "C" __global__ void elu_forward_##SUF(const T* __restrict__ x, T alpha,              \
                                                 T* __restrict__ y, long long n) {              \
        minicnn::elu_fwd_body<T>(x, alpha, y, n);                                               \
    }                                                                                           \
    extern "C" __global__ void elu_backward_##SUF(const T* __restrict__ dy,                     \
                                                  const T* __restrict__ y, T alpha,             \
                                                  T* __restrict__ dx, long long n) {            \
        minicnn::elu_bwd_body<T>(dy, y, alpha, dx, n);                                          \
    }                                                                                           \
    extern "C" __global__ void gelu_forward_##SUF(const T* __restrict__ x, T* __restrict__ y,   \
                                                  long long n, int approx_tanh) {               \
        minicnn::gelu_fwd_body<T>(x, y, n, approx_tanh);                                        \
    }                                                                                           \
    extern "C" __global__ void gelu_backward_##SUF(const T* __restrict__ dy,                    \
                                                   const T* __restrict__ x,                     \
                                                   T* __restrict__ dx, long long n,             \
                                                   int approx_tanh) {                           \
        minicnn::gelu_bwd_body<T>(dy, x, dx, n, approx_tanh);                                   \
    }

MINICNN_ACTIVATION_KERNELS(f32, float)
MINICNN_ACTIVATION_KERNELS(f64, double)
