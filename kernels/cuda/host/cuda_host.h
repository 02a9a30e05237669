// Host (g++) stand-ins for the bits of CUDA that minicnn's kernels use, so
// the .cu files can be compiled into an ordinary shared library and their
// index arithmetic tested without a GPU (tests/test_cuda_host.py).
//
// Only included when MINICNN_HOST_BUILD is defined (see common.cuh); nvcc and
// NVRTC never see this file.
//
// A "launch" runs the kernel body once per (block, thread), one after the
// other.  That is exact for minicnn's grid-stride kernels, which have no
// shared memory or barriers and in which every output element has one owner
// thread; running the threads in reverse order as well (see
// minicnn_host::set_order) checks that no result depends on thread order.
//
// Block kernels (the tiled implicit GEMM of conv_igemm.cu) use __shared__
// memory and __syncthreads(). minicnn_host::run_blocks runs them one block
// at a time, the block's threads as fibers (ucontext) that take turns between
// barriers; __shared__ becomes `static`, which is then exactly one block's
// shared memory. A barrier that not every thread of the block reaches (a
// kernel bug: undefined behaviour on a GPU) fails the launch.
#ifndef MINICNN_CUDA_HOST_H
#define MINICNN_CUDA_HOST_H

#ifdef __CUDACC__
#error "cuda_host.h is for host (g++) builds only"
#endif

#include <math.h>
#include <string.h>

#include <ucontext.h>

#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __syncthreads() minicnn_host::sync_block()

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

inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}

inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
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

// Block kernels run each thread of a block as a fiber (ucontext) on the calling thread:
// a fiber runs until its next __syncthreads() or its end, then the next fiber runs; the
// barrier is passed when every fiber of the block has reached it. Deterministic, and far
// cheaper than OS threads (a barrier is `block` context switches).
struct Fiber {
    ucontext_t ctx;
    std::unique_ptr<char[]> stack;  // left uninitialised: no pages touched that the body does not use
    enum State { RUNNING, WAITING, DONE } state = RUNNING;
};

struct BlockRun {
    ucontext_t scheduler;
    std::vector<Fiber> fibers;
    unsigned current = 0;
    void (*body)(void*) = nullptr;
    void* closure = nullptr;
};

inline BlockRun*& current_block() {
    static BlockRun* b = nullptr;
    return b;
}

// Set when __syncthreads() ran outside run_blocks (a kernel that needs its block's
// threads together, launched one thread at a time): host_launch reports it.
inline bool& stray_sync() {
    static bool s = false;
    return s;
}

// __syncthreads() of the host build: back to the scheduler until the whole block is here.
inline void sync_block() {
    BlockRun* b = current_block();
    if (b == nullptr) {
        stray_sync() = true;
        return;
    }
    Fiber& f = b->fibers[b->current];
    f.state = Fiber::WAITING;
    swapcontext(&f.ctx, &b->scheduler);
}

inline void fiber_entry() {
    BlockRun* b = current_block();
    b->body(b->closure);
    b->fibers[b->current].state = Fiber::DONE;  // then uc_link returns to the scheduler
}

// Run `body` for every (block, thread) of a 1-D grid: blocks one after the other (in
// increasing or, with order 1, decreasing order), each block's threads as fibers that
// meet at __syncthreads(); __shared__ (static) memory is then exactly one block's shared
// memory. Returns false when a barrier was not reached by every thread of a block (some
// ended while others waited: undefined behaviour on a GPU).
template <typename F>
bool run_blocks(unsigned int grid, unsigned int block, F body) {
    const size_t stack_bytes = 64 * 1024;  // the kernels' frames take a few KB
    BlockRun run;
    run.fibers.resize(block);
    for (Fiber& f : run.fibers) f.stack.reset(new char[stack_bytes]);
    run.body = [](void* c) { (*static_cast<F*>(c))(); };
    run.closure = &body;
    current_block() = &run;
    gridDim = {grid, 1u, 1u};
    blockDim = {block, 1u, 1u};
    bool ok = true;
    for (unsigned int k = 0; k < grid && ok; ++k) {
        blockIdx = {order == 1 ? grid - 1 - k : k, 0u, 0u};
        for (Fiber& f : run.fibers) {
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.get();
            f.ctx.uc_stack.ss_size = stack_bytes;
            f.ctx.uc_link = &run.scheduler;
            makecontext(&f.ctx, fiber_entry, 0);
            f.state = Fiber::RUNNING;
        }
        for (;;) {  // one round: every unfinished fiber runs to its next barrier or its end
            unsigned waiting = 0, done = 0;
            for (unsigned int i = 0; i < block; ++i) {
                const unsigned t = order == 1 ? block - 1 - i : i;
                Fiber& f = run.fibers[t];
                if (f.state == Fiber::DONE) {
                    ++done;
                    continue;
                }
                f.state = Fiber::RUNNING;
                run.current = t;
                threadIdx = {t, 0u, 0u};
                swapcontext(&run.scheduler, &f.ctx);
                (f.state == Fiber::DONE ? done : waiting) += 1;
            }
            if (done == block) break;
            if (waiting != block) {  // some ended while others wait at a barrier
                ok = false;
                break;
            }
        }
    }
    current_block() = nullptr;
    threadIdx = {0u, 0u, 0u};
    blockIdx = {0u, 0u, 0u};
    return ok;
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 for one warp of a block kernel: each
// lane hands in its fragment registers (the PTX ISA's layout, see kernels/cuda/igemm_tile.cuh),
// the warp's full A (16 x 8), B (8 x 8) and C (16 x 8) are put together, and each lane takes
// its four entries of D = A B + C. A warp-wide operation, emulated with two block barriers
// (every thread of a block kernel calls it the same number of times); the products are
// exact in float (TF32 inputs: 11-bit significands) and summed k ascending.
struct MmaExchange {
    float a[32][4], b[32][2], c[32][4];
};

inline void mma_m16n8k8_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2]) {
    static MmaExchange warps[32];  // per warp of the block (up to 1024 threads)
    const unsigned w = threadIdx.x / 32, lane = threadIdx.x % 32;
    MmaExchange& x = warps[w];
    for (int q = 0; q < 4; ++q) x.a[lane][q] = a[q], x.c[lane][q] = d[q];
    for (int q = 0; q < 2; ++q) x.b[lane][q] = b[q];
    sync_block();  // the warp's registers are all in
    float A[16][8], B[8][8], C[16][8];
    for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t4 = l % 4;
        A[g][t4] = x.a[l][0], A[g + 8][t4] = x.a[l][1], A[g][t4 + 4] = x.a[l][2], A[g + 8][t4 + 4] = x.a[l][3];
        B[t4][g] = x.b[l][0], B[t4 + 4][g] = x.b[l][1];
        for (int q = 0; q < 4; ++q) C[g + 8 * (q / 2)][2 * t4 + q % 2] = x.c[l][q];
    }
    sync_block();  // nobody writes the exchange again before every lane has read it
    const int g = lane / 4, t4 = lane % 4;
    for (int q = 0; q < 4; ++q) {
        const int r = g + 8 * (q / 2), col = 2 * t4 + q % 2;
        float acc = C[r][col];
        for (int k = 0; k < 8; ++k) acc += A[r][k] * B[k][col];
        d[q] = acc;
    }
}

}  // namespace minicnn_host

#endif  // MINICNN_CUDA_HOST_H
