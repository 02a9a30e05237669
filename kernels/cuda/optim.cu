// Fused optimiser steps, in place, float and double: one thread per element
// (of one tensor, or of a whole list of tensors in the _multi kernels) does
// the whole update of minicnn.kernels.reference.sgd_update / adam_update
// (PyTorch's single-tensor code path) with the reference's operations in the
// reference's order. Scalars arrive already cast to the array's type, the way
// numpy casts a Python float against a float32 array; the ones the reference
// computes in Python (1 - dampening, 1 - beta, the bias corrections, the step
// size) are computed in Python by the loader too. With the loader's
// --fmad=false (no fused multiply-add contraction) each operation rounds as in
// numpy, so the results match the reference bit for bit.
#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif

namespace minicnn {

// g = grad (+ wd * param); if momentum: buf = g (first) or buf*momentum +
// (1 - dampening)*g, g = g + momentum*buf (nesterov) or buf; param -= lr * g.
// buf is not touched when has_momentum == 0 (it may then be any pointer).
template <typename T>
__device__ __forceinline__ void sgd_element(T* __restrict__ param, const T* __restrict__ grad,
                                            T* __restrict__ buf, long long i, T lr, T momentum,
                                            T one_minus_dampening, T weight_decay, int has_wd,
                                            int has_momentum, int nesterov, int first) {
    const T p = param[i];
    T g = grad[i];
    if (has_wd) g = g + weight_decay * p;
    if (has_momentum) {
        T b;
        if (first) {
            b = g;
        } else {
            b = buf[i] * momentum;
            b = b + one_minus_dampening * g;
        }
        buf[i] = b;
        g = nesterov ? g + momentum * b : b;
    }
    param[i] = p - lr * g;
}

template <typename T>
__device__ __forceinline__ void sgd_body(T* __restrict__ param, const T* __restrict__ grad,
                                         T* __restrict__ buf, long long n, T lr, T momentum,
                                         T one_minus_dampening, T weight_decay, int has_wd,
                                         int has_momentum, int nesterov, int first) {
    MINICNN_GRID_STRIDE(i, n) {
        sgd_element<T>(param, grad, buf, i, lr, momentum, one_minus_dampening, weight_decay,
                       has_wd, has_momentum, nesterov, first);
    }
}

// g = grad (+ wd * param); m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g;
// param -= step_size * (m / (sqrt(v) / bc2_sqrt + eps)),
// step_size = lr / (1 - b1**t), bc2_sqrt = sqrt(1 - b2**t).
template <typename T>
__device__ __forceinline__ void adam_element(T* __restrict__ param, const T* __restrict__ grad,
                                             T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                                             long long i, T beta1, T one_minus_beta1, T beta2,
                                             T one_minus_beta2, T weight_decay, int has_wd,
                                             T step_size, T bc2_sqrt, T eps) {
    const T p = param[i];
    T g = grad[i];
    if (has_wd) g = g + weight_decay * p;
    T m = exp_avg[i] * beta1;
    m = m + one_minus_beta1 * g;
    T v = exp_avg_sq[i] * beta2;
    v = v + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const T denom = m_sqrt(v) / bc2_sqrt + eps;
    param[i] = p - step_size * (m / denom);
}

template <typename T>
__device__ __forceinline__ void adam_body(T* __restrict__ param, const T* __restrict__ grad,
                                          T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                                          long long n, T beta1, T one_minus_beta1, T beta2,
                                          T one_minus_beta2, T weight_decay, int has_wd,
                                          T step_size, T bc2_sqrt, T eps) {
    MINICNN_GRID_STRIDE(i, n) {
        adam_element<T>(param, grad, exp_avg, exp_avg_sq, i, beta1, one_minus_beta1, beta2,
                        one_minus_beta2, weight_decay, has_wd, step_size, bc2_sqrt, eps);
    }
}

// Multi-tensor updates: one launch steps every tensor of a list. Tensor t is
// elements [offsets[t], offsets[t + 1]) of the list's virtual concatenation
// (offsets has n_tensors + 1 entries, offsets[0] = 0, non-decreasing); the
// tensors' device addresses arrive in tables of unsigned long long. Each
// element finds its tensor by binary search: the last t with offsets[t] <= i.
__device__ __forceinline__ int tensor_of(const long long* __restrict__ offsets, int n_tensors,
                                         long long i) {
    int lo = 0;
    int hi = n_tensors - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (offsets[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

template <typename T>
__device__ __forceinline__ T* table_ptr(const unsigned long long* __restrict__ table, int t) {
    return reinterpret_cast<T*>(table[t]);
}

template <typename T>
__device__ __forceinline__ void sgd_multi_body(const unsigned long long* __restrict__ params,
                                               const unsigned long long* __restrict__ grads,
                                               const unsigned long long* __restrict__ bufs,
                                               const long long* __restrict__ offsets, int n_tensors,
                                               long long total, T lr, T momentum,
                                               T one_minus_dampening, T weight_decay, int has_wd,
                                               int has_momentum, int nesterov, int first) {
    MINICNN_GRID_STRIDE(i, total) {
        const int t = tensor_of(offsets, n_tensors, i);
        sgd_element<T>(table_ptr<T>(params, t), table_ptr<T>(grads, t), table_ptr<T>(bufs, t),
                       i - offsets[t], lr, momentum, one_minus_dampening, weight_decay, has_wd,
                       has_momentum, nesterov, first);
    }
}

template <typename T>
__device__ __forceinline__ void adam_multi_body(const unsigned long long* __restrict__ params,
                                                const unsigned long long* __restrict__ grads,
                                                const unsigned long long* __restrict__ exp_avgs,
                                                const unsigned long long* __restrict__ exp_avg_sqs,
                                                const long long* __restrict__ offsets, int n_tensors,
                                                long long total, T beta1, T one_minus_beta1, T beta2,
                                                T one_minus_beta2, T weight_decay, int has_wd,
                                                T step_size, T bc2_sqrt, T eps) {
    MINICNN_GRID_STRIDE(i, total) {
        const int t = tensor_of(offsets, n_tensors, i);
        adam_element<T>(table_ptr<T>(params, t), table_ptr<T>(grads, t), table_ptr<T>(exp_avgs, t),
                        table_ptr<T>(exp_avg_sqs, t), i - offsets[t], beta1, one_minus_beta1, beta2,
                        one_minus_beta2, weight_decay, has_wd, step_size, bc2_sqrt, eps);
    }
}

}  // namespace minicnn

#define MINICNN_OPTIM_KERNELS(SUF, T)                                                          \
    extern "C" __global__ void sgd_update_##SUF(                                               \
        T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ buf, long long n,   \
        T lr, T momentum, T one_minus_dampening, T weight_decay, int has_wd, int has_momentum, \
        int nesterov, int first) {                                                             \
        minicnn::sgd_body<T>(param, grad, buf, n, lr, momentum, one_minus_dampening,           \
                             weight_decay, has_wd, has_momentum, nesterov, first);             \
    }                                                                                          \
    extern "C" __global__ void adam_update_##SUF(                                              \
        T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ exp_avg,            \
        T* __restrict__ exp_avg_sq, long long n, T beta1, T one_minus_beta1, T beta2,          \
        T one_minus_beta2, T weight_decay, int has_wd, T step_size, T bc2_sqrt, T eps) {       \
        minicnn::adam_body<T>(param, grad, exp_avg, exp_avg_sq, n, beta1, one_minus_beta1,     \
                              beta2, one_minus_beta2, weight_decay, has_wd, step_size,         \
                              bc2_sqrt, eps);                                                  \
    }                                                                                          \
    extern "C" __global__ void sgd_update_multi_##SUF(                                         \
        const unsigned long long* __restrict__ params, const unsigned long long* __restrict__ grads, \
        const unsigned long long* __restrict__ bufs, const long long* __restrict__ offsets,    \
        int n_tensors, long long total, T lr, T momentum, T one_minus_dampening, T weight_decay, \
        int has_wd, int has_momentum, int nesterov, int first) {                               \
        minicnn::sgd_multi_body<T>(params, grads, bufs, offsets, n_tensors, total, lr, momentum, \
                                   one_minus_dampening, weight_decay, has_wd, has_momentum,    \
                                   nesterov, first);                                           \
    }                                                                                          \
    extern "C" __global__ void adam_update_multi_##SUF(                                        \
        const unsigned long long* __restrict__ params, const unsigned long long* __restrict__ grads, \
        const unsigned long long* __restrict__ exp_avgs,                                       \
        const unsigned long long* __restrict__ exp_avg_sqs, const long long* __restrict__ offsets, \
        int n_tensors, long long total, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, \
        T weight_decay, int has_wd, T step_size, T bc2_sqrt, T eps) {                          \
        minicnn::adam_multi_body<T>(params, grads, exp_avgs, exp_avg_sqs, offsets, n_tensors,  \
                                    total, beta1, one_minus_beta1, beta2, one_minus_beta2,     \
                                    weight_decay, has_wd, step_size, bc2_sqrt, eps);           \
    }

MINICNN_OPTIM_KERNELS(f32, float)
MINICNN_OPTIM_KERNELS(f64, double)
