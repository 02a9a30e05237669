// Shared helpers for minicnn's CUDA kernels.
//
// Three ways this text gets compiled:
//   * by NVRTC through cupy.RawModule: the loader (kernels/cuda/__init__.py)
//     prepends this file to each .cu source, so MINICNN_COMMON_CUH is already
//     defined when the .cu's guarded `#include "common.cuh"` is reached and
//     NVRTC never has to open a file;
//   * by nvcc on the files as they lie on disk (tests/test_cuda_compile.py);
//   * by g++ with MINICNN_HOST_BUILD defined (tests/test_cuda_host.py), where
//     host/cuda_host.h supplies threadIdx/blockIdx/..., the qualifiers and the
//     few device intrinsics used here, and runs every (block, thread) in turn.
//
// Rules the kernels follow so that the host build is a faithful test:
//   * one-dimensional grid-stride loops only (MINICNN_GRID_STRIDE), except the
//     block kernels of conv_igemm.cu (tiled products: a fixed grid of blocks);
//   * no shared memory and no barriers outside those block kernels, which the host
//     build runs a block at a time, its threads as fibers meeting at each barrier;
//   * no float atomics, no warp-level operations; every output element is
//     written by exactly one thread (scatters are written as gathers);
//   * the loop index is 64-bit; the kernels that decompose a flat index with
//     / and % are compiled twice, with int (`_i32`, used when every array has
//     fewer than 2^31 elements) and long long (`_i64`) arithmetic.
#ifndef MINICNN_COMMON_CUH
#define MINICNN_COMMON_CUH

#ifdef MINICNN_HOST_BUILD
#include "host/cuda_host.h"
#endif

// `MINICNN_UNROLL for (...)`: unroll a loop with a compile-time trip count on the GPU
// (g++ would warn about the unknown pragma; its -O1 decides for itself).
#ifdef MINICNN_HOST_BUILD
#define MINICNN_UNROLL
#else
#define MINICNN_UNROLL _Pragma("unroll")
#endif

// for (long long I = global thread id; I < N; I += total threads)
#define MINICNN_GRID_STRIDE(I, N)                                              \
    for (long long I = (long long)blockIdx.x * (long long)blockDim.x +         \
                       (long long)threadIdx.x;                                 \
         I < (N); I += (long long)blockDim.x * (long long)gridDim.x)

namespace minicnn {

// Overloads that pick the float or double version of each math function
// (NVRTC has the CUDA math library built in; g++ takes them from <math.h>).
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double m_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float m_erf(float x) { return erff(x); }
__device__ __forceinline__ double m_erf(double x) { return erf(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }

// -inf without <math_constants.h> (not available to header-less NVRTC).
__device__ __forceinline__ float m_neg_inf(float) { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ double m_neg_inf(double) {
    return -__longlong_as_double(0x7ff0000000000000LL);
}

// NaN test that needs no header (the kernels are never built with fast-math).
template <typename T>
__device__ __forceinline__ bool m_isnan(T x) { return x != x; }

}  // namespace minicnn

#endif  // MINICNN_COMMON_CUH
