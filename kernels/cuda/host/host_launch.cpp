// Host build of every minicnn CUDA kernel, for tests/test_cuda_host.py.
//
//   g++ -std=c++17 -O1 -shared -fPIC -ffp-contract=off host_launch.cpp -o libminicnn_cuda_host.so
//
// The .cu files are compiled as plain C++ (MINICNN_HOST_BUILD pulls in
// cuda_host.h through common.cuh) and each kernel is registered below with
// the types of its parameters. Exported C API (loaded with ctypes):
//
//   int         host_kernel_count(void);
//   const char* host_kernel_name(int i);
//   int         host_kernel_is_block(int i);   // 1: a block kernel (see host_launch)
//   const char* host_kernel_signature(int i);  // one letter per parameter:
//               i int, q long long, f float, d double; a pointer is the
//               upper-case letter of its element type (F float*, D double*,
//               Q long long*, U unsigned long long*, B bool*)
//   int         host_launch(const char* name, unsigned grid, unsigned block,
//                           void** args, int order);
//
// host_launch works like cuLaunchKernel: args[k] points at the value of the
// k-th kernel parameter (for a pointer parameter: at the pointer). It runs the
// kernel body for every (block, thread) of a 1-D grid of grid x block
// threads, in increasing (order 0) or decreasing (order 1) thread order, and
// returns 0, or -1 for an unknown kernel name. Block kernels (registered with KB:
// shared memory and barriers) run a block at a time with its threads together
// (minicnn_host::run_blocks, as fibers); -2: a barrier that not all of a block's threads reached
// (some threads ended while others waited), -3: __syncthreads() in a kernel not registered as a block kernel.
#define MINICNN_HOST_BUILD 1

#include "../conv.cu"
#include "../pool.cu"
#include "../activation.cu"
#include "../optim.cu"
#include "../loss.cu"
#include "../conv_igemm.cu"

// Kernels of the host build only, which check the harness itself
// (tests/test_cuda_host_igemm.py): a block's shared memory and barrier work, and a
// barrier not every thread reaches, or one in a kernel not registered as a block
// kernel, fails the launch.
extern "C" void host_test_shared_reverse(long long* out) {
    __shared__ long long s[1024];
    const unsigned t = threadIdx.x;
    s[t] = (long long)blockIdx.x * 10000 + t;
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = s[blockDim.x - 1 - t];  // another thread's entry
}

extern "C" void host_test_divergent_barrier(long long* out) {
    if (threadIdx.x % 2 == 1) __syncthreads();
    out[threadIdx.x] = 1;
}

#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// Parameter type -> signature letter: scalars lower case, pointers upper case
// by element type (so a test can check the dtype of each array it passes).
template <typename T>
struct Code;
template <>
struct Code<int> {
    static constexpr char c = 'i';
};
template <>
struct Code<long long> {
    static constexpr char c = 'q';
};
template <>
struct Code<float> {
    static constexpr char c = 'f';
};
template <>
struct Code<double> {
    static constexpr char c = 'd';
};
template <>
struct Code<bool> {
    static constexpr char c = 'b';
};
template <>
struct Code<unsigned long long> {
    static constexpr char c = 'u';
};
template <typename T>
struct Code<T*> {
    static constexpr char c = Code<typename std::remove_const<T>::type>::c - 'a' + 'A';
};

struct Kernel {
    std::string name;
    std::string signature;
    void (*invoke)(void* kernel, void** args);
    void* kernel;
    bool block = false;  // a block kernel: __shared__ and __syncthreads(), run by run_blocks
};

template <typename... A, std::size_t... I>
void invoke_unpacked(void (*k)(A...), void** args, std::index_sequence<I...>) {
    k(*static_cast<A*>(args[I])...);
}

template <typename... A>
void invoke(void* kernel, void** args) {
    auto k = reinterpret_cast<void (*)(A...)>(kernel);
    invoke_unpacked(k, args, std::index_sequence_for<A...>{});
}

template <typename... A>
Kernel make(const char* name, void (*k)(A...)) {
    return Kernel{name, std::string{Code<A>::c...}, &invoke<A...>, reinterpret_cast<void*>(k)};
}

#define K(NAME) make(#NAME, &NAME)

Kernel block_kernel(Kernel k) {
    k.block = true;
    return k;
}

#define KB(NAME) block_kernel(make(#NAME, &NAME))
#define IGEMM_KIND(KIND, BM)                                                              \
    KB(conv2d_igemm_##KIND##_m##BM##_f32_i32), KB(conv2d_igemm_##KIND##_m##BM##_f32_i64),   \
        KB(conv2d_igemm_##KIND##_m##BM##_tf32_i32), KB(conv2d_igemm_##KIND##_m##BM##_tf32_i64), \
        KB(conv2d_igemm_##KIND##_m##BM##_f64_i32), KB(conv2d_igemm_##KIND##_m##BM##_f64_i64)
#define IGEMM(BM) \
    IGEMM_KIND(forward, BM), IGEMM_KIND(input_grad, BM), IGEMM_KIND(weight_grad, BM)

const std::vector<Kernel>& registry() {
    static const std::vector<Kernel> kernels = {
        // conv.cu
        K(im2col_f32_i32), K(im2col_f32_i64), K(im2col_f64_i32), K(im2col_f64_i64),
        K(col2im_f32_i32), K(col2im_f32_i64), K(col2im_f64_i32), K(col2im_f64_i64),
        K(im2col_wide_f32_i32), K(im2col_wide_f32_i64), K(im2col_wide_f64_i32), K(im2col_wide_f64_i64),
        K(col2im_wide_f32_i32), K(col2im_wide_f32_i64), K(col2im_wide_f64_i32), K(col2im_wide_f64_i64),
        K(conv2d_direct_forward_f32_i32), K(conv2d_direct_forward_f32_i64),
        K(conv2d_direct_forward_f64_i32), K(conv2d_direct_forward_f64_i64),
        K(conv2d_direct_input_grad_f32_i32), K(conv2d_direct_input_grad_f32_i64),
        K(conv2d_direct_input_grad_f64_i32), K(conv2d_direct_input_grad_f64_i64),
        // pool.cu
        K(maxpool2d_forward_f32_i32), K(maxpool2d_forward_f32_i64),
        K(maxpool2d_forward_f64_i32), K(maxpool2d_forward_f64_i64),
        K(maxpool2d_backward_f32_i32), K(maxpool2d_backward_f32_i64),
        K(maxpool2d_backward_f64_i32), K(maxpool2d_backward_f64_i64),
        K(maxpool2d_backward_planes_f32_i32), K(maxpool2d_backward_planes_f32_i64),
        K(maxpool2d_backward_planes_f64_i32), K(maxpool2d_backward_planes_f64_i64),
        K(maxunpool2d_claim_i32), K(maxunpool2d_claim_i64),
        K(maxunpool2d_gather_f32_i32), K(maxunpool2d_gather_f32_i64),
        K(maxunpool2d_gather_f64_i32), K(maxunpool2d_gather_f64_i64),
        K(maxunpool2d_backward_f32_i32), K(maxunpool2d_backward_f32_i64),
        K(maxunpool2d_backward_f64_i32), K(maxunpool2d_backward_f64_i64),
        K(relu_maxpool2d_forward_f32_i32), K(relu_maxpool2d_forward_f32_i64),
        K(relu_maxpool2d_forward_f64_i32), K(relu_maxpool2d_forward_f64_i64),
        K(relu_maxpool2d_backward_f32_i32), K(relu_maxpool2d_backward_f32_i64),
        K(relu_maxpool2d_backward_f64_i32), K(relu_maxpool2d_backward_f64_i64),
        // activation.cu
        K(relu_forward_f32), K(relu_forward_f64), K(relu_backward_f32), K(relu_backward_f64),
        K(add_relu_forward_f32), K(add_relu_forward_f64),
        K(leaky_relu_forward_f32), K(leaky_relu_forward_f64),
        K(leaky_relu_backward_f32), K(leaky_relu_backward_f64),
        K(elu_forward_f32), K(elu_forward_f64), K(elu_backward_f32), K(elu_backward_f64),
        K(gelu_forward_f32), K(gelu_forward_f64), K(gelu_backward_f32), K(gelu_backward_f64),
        // optim.cu
        K(sgd_update_f32), K(sgd_update_f64), K(adam_update_f32), K(adam_update_f64),
        K(sgd_update_multi_f32), K(sgd_update_multi_f64),
        K(adam_update_multi_f32), K(adam_update_multi_f64),
        // loss.cu
        K(cross_entropy_forward_f32), K(cross_entropy_forward_f64),
        K(cross_entropy_backward_f32), K(cross_entropy_backward_f64),
        // conv_igemm.cu (block kernels)
        IGEMM(16), IGEMM(32), IGEMM(64),
        K(igemm_sum_splits_f32), K(igemm_sum_splits_f64),
        // the harness's own checks
        KB(host_test_shared_reverse), KB(host_test_divergent_barrier),
        make("host_test_stray_sync", &host_test_shared_reverse),  // a barrier, run thread by thread
    };
    return kernels;
}

#undef K
#undef KB
#undef IGEMM_KIND
#undef IGEMM

}  // namespace

extern "C" int host_kernel_count(void) { return (int)registry().size(); }

extern "C" const char* host_kernel_name(int i) {
    if (i < 0 || i >= host_kernel_count()) return nullptr;
    return registry()[i].name.c_str();
}

extern "C" const char* host_kernel_signature(int i) {
    if (i < 0 || i >= host_kernel_count()) return nullptr;
    return registry()[i].signature.c_str();
}

extern "C" int host_kernel_is_block(int i) {
    if (i < 0 || i >= host_kernel_count()) return -1;
    return registry()[i].block ? 1 : 0;
}

extern "C" int host_launch(const char* name, unsigned grid, unsigned block, void** args,
                           int order) {
    for (const Kernel& k : registry()) {
        if (std::strcmp(k.name.c_str(), name) == 0) {
            minicnn_host::set_order(order);
            minicnn_host::stray_sync() = false;
            bool ok = true;
            if (k.block) {
                ok = minicnn_host::run_blocks(grid, block, [&]() { k.invoke(k.kernel, args); });
            } else {
                minicnn_host::run(grid, block, [&]() { k.invoke(k.kernel, args); });
            }
            minicnn_host::set_order(0);
            if (!ok) return -2;
            if (minicnn_host::stray_sync()) return -3;
            return 0;
        }
    }
    return -1;
}
