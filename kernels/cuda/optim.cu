// Fused optimiser steps, in place, float and double: one thread per element
// does the whole update of minicnn.kernels.reference.sgd_update / adam_update
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
__device__ __forceinline__ void sgd_body(T* __restrict__ param, const T* __restrict__ grad,
                                         T* __restrict__ buf, long long n, T lr, T momentum,
                                         T one_minus_dampening, T weight_decay, int has_wd,
                                         int has_momentum, int nesterov, int first) {
    MINICNN_GRID_STRIDE(i, n) {
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
}

// g = grad (+ wd * param); m = m*b1 + (1-b1)*g; v = v*b2 + (1-b2)*g*g;
// param -= step_size * (m / (sqrt(v) / bc2_sqrt + eps)),
// step_size = lr / (1 - b1**t), bc2_sqrt = sqrt(1 - b2**t).
template <typename T>
__device__ __forceinline__ void adam_body(T* __restrict__ param, const T* __restrict__ grad,
                                          T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                                          long long n, T beta1, T one_minus_beta1, T beta2,
                                          T one_minus_beta2, T weight_decay, int has_wd,
                                          T step_size, T bc2_sqrt, T eps) {
    MINICNN_GRID_STRIDE(i, n) {
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
    }

MINICNN_OPTIM_KERNELS(f32, float)
MINICNN_OPTIM_KERNELS(f64, double)
