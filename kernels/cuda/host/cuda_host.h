// Host (g++) stand-ins for the bits of CUDA that minicnn's kernels use, so
// the .cu files can be compiled into an ordinary shared library and their
// index arithmetic tested without a GPU (tests/test_cuda_host.py).
//
// Only included when MINICNN_HOST_BUILD is defined (see common.cuh); nvcc and
// NVRTC never see this file.
//
// A "launch" runs the kernel body once per (block, thread), one after the
// other.  That is exact for minicnn's kernels because they are grid-stride
// loops without shared memory or barriers in which every output element has
// one owner thread; running the threads in reverse order as well (see
// minicnn_host::set_order) checks that no result depends on thread order.
#ifndef MINICNN_CUDA_HOST_H
#define MINICNN_CUDA_HOST_H

#ifdef __CUDACC__
#error "cuda_host.h is for host (g++) builds only"
#endif

#include <math.h>
#include <string.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct minicnn_uint3 {
    unsigned int x, y, z;
};

// Same types as CUDA's built-ins (unsigned int members), so that overflow of
// 32-bit products like blockIdx.x * blockDim.x behaves alike here.
static thread_local minicnn_uint3 threadIdx = {0, 0, 0};
static thread_local minicnn_uint3 blockIdx = {0, 0, 0};
static thread_local minicnn_uint3 blockDim = {1, 1, 1};
static thread_local minicnn_uint3 gridDim = {1, 1, 1};
static const int warpSize = 32;

inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

inline double __longlong_as_double(long long i) {
    double d;
    memcpy(&d, &i, sizeof d);
    return d;
}

// Threads run one at a time, so the atomics are plain read-modify-writes.
inline unsigned long long atomicMax(unsigned long long* addr, unsigned long long v) {
    unsigned long long old = *addr;
    if (v > old) *addr = v;
    return old;
}

inline int atomicMax(int* addr, int v) {
    int old = *addr;
    if (v > old) *addr = v;
    return old;
}

namespace minicnn_host {

// 0: blocks and threads in increasing order; 1: in decreasing order.
static thread_local int order = 0;

inline void set_order(int o) { order = o; }

// Run `body` once for every (block, thread) of a 1-D grid.
template <typename F>
void run(unsigned int grid, unsigned int block, F body) {
    gridDim = {grid, 1u, 1u};
    blockDim = {block, 1u, 1u};
    const unsigned long long total = (unsigned long long)grid * block;
    for (unsigned long long k = 0; k < total; ++k) {
        const unsigned long long lin = order == 1 ? total - 1 - k : k;
        blockIdx = {(unsigned int)(lin / block), 0u, 0u};
        threadIdx = {(unsigned int)(lin % block), 0u, 0u};
        body();
    }
    threadIdx = {0u, 0u, 0u};
    blockIdx = {0u, 0u, 0u};
}

}  // namespace minicnn_host

#endif  // MINICNN_CUDA_HOST_H
