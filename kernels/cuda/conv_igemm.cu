// Implicit-GEMM convolution (NCHW), float and double: the im2col gather happens inside
// the GEMM's tile loads, so no column matrix is ever written to global memory.
//
// Each kernel is one product C (M, P) = A (M, K) B (K, P), tiled BM x BN per block of 256
// threads, K walked in steps of BK = 16 through shared memory (the tile's main loop, shared
// by all three, is igemm_tile.cuh). The tile is 64 x 64, 32 x 128 or 16 x 256 (one kernel
// each, `_m<BM>` in the name): M is a layer's channel count, often 16 or 32 here, and a
// 64-row tile over 16 channels would compute 48 rows of zeros. float32 comes twice: exact
// FP32 (`_f32`) and on the TF32 tensor cores (`_tf32`, inputs rounded to TF32, sums in
// FP32), the choice PyTorch's cuDNN convolutions make by default.
//
//   conv2d_igemm_forward      y (N, O, OH, OW) (+ b (O,)):
//                             M = O, P = N*OH*OW, K = C*kh*kw;
//                             A = w as (O, C*kh*kw), B = x's column matrix, gathered;
//   conv2d_igemm_input_grad   dx (N, C, H, W) of a Conv2d:
//                             M = C, P = N*H*W, K = O*kh*kw;
//                             A(c, (o, i, j)) = w[o, c, i, j],
//                             B((o, i, j), (n, h, w)) = dy[n, o, (h + ph - i)/sh, (w + pw - j)/sw]
//                             where both divide and fall inside dy, else 0;
//   conv2d_igemm_weight_grad  dW (O, C*kh*kw): M = O, P = C*kh*kw, K = N*OH*OW;
//                             A = dy as (O, N*OH*OW), B = x's column matrix transposed.
//                             The long K is cut into `splits` ranges of `chunk` (a multiple
//                             of BK); with splits > 1 each range's product goes to its own
//                             slice of out (splits, O, C*kh*kw) and igemm_sum_splits adds
//                             the slices in split order.
//
// (With the roles of x and dy swapped the first two are ConvTranspose2d's input gradient
// and forward, as for the direct kernels of conv.cu.)
//
// Every element of C is summed by one thread (or one mma fragment), k ascending, so results
// are deterministic (they differ from im2col + cuBLAS only by rounding: another order).
//
// These are *block kernels*: unlike the grid-stride kernels of the other sources they use
// shared memory and __syncthreads(), and need exactly THREADS threads per block and a
// 1-D grid of splits * tiles_m * tiles_n blocks (block b is split b / (tiles_m*tiles_n),
// then tile row, then tile column). The host build runs each block's threads together
// (host/cuda_host.h, run_blocks).
//
// Kernel names: <name>_m<16|32|64>_<f32|tf32|f64>_<i32|i64> (tile rows; the arithmetic; the
// index type of all offsets, as in conv.cu); igemm_sum_splits_<f32|f64>.
#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif
#ifndef MINICNN_IGEMM_TILE_CUH
#include "igemm_tile.cuh"
#endif

namespace minicnn {
namespace igemm {

// This thread's entries of the tile into out laid out (N, M, plane), column p = n*plane + l
// (y and dx), + bias[m] unless bias is null.
template <typename T, typename I, int BM, bool TF32>
__device__ __forceinline__ void store_planes(const T (&acc)[TM][TN], T* __restrict__ out,
                                             const T* __restrict__ bias, I M, I P, I m0, I p0,
                                             I plane) {
    using Where = Piece<BM, UseMma<TF32>::value>;
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) {
            const I m = m0 + Where::row(i, j), p = p0 + Where::col(i, j);
            if (m >= M || p >= P) continue;
            const I n = p / plane, l = p % plane;
            out[(n * M + m) * plane + l] = bias != nullptr ? acc[i][j] + bias[m] : acc[i][j];
        }
}

// --- forward: y = w (O, C*kh*kw) @ cols(x) (+ b) ---------------------------------------

template <typename T, typename I>
struct Forward {
    const T* x;
    const T* w;
    I C, H, W, K, khkw, kw, OHW, OW, sh, sw, ph, pw;
    struct KInfo {
        I k, off, i, j;  // k = (c, i, j); off = c*H*W + i*W + j
    };
    struct Col {
        I base, hb, wb;  // p = (n, oh, ow): base = n*C*H*W, hb = oh*sh - ph, wb = ow*sw - pw
    };
    static constexpr bool B_K_FAST = false;  // x is contiguous along ow, i.e. along p

    __device__ KInfo k_info(I k) const {
        const I c = k / khkw, r = k % khkw, i = r / kw, j = r % kw;
        return KInfo{k, (c * H + i) * W + j, i, j};
    }
    __device__ Col col(I p) const {
        const I n = p / OHW, l = p % OHW;
        return Col{n * C * H * W, (l / OW) * sh - ph, (l % OW) * sw - pw};
    }
    __device__ T a(I m, const KInfo& k) const { return w[m * K + k.k]; }
    __device__ T b(const KInfo& k, const Col& c) const {
        const I h = c.hb + k.i, wx = c.wb + k.j;
        return (h >= 0 && h < H && wx >= 0 && wx < W) ? x[c.base + k.off + c.hb * W + c.wb] : T(0);
    }
};

template <typename T, typename I, int BM, bool TF32>
__device__ __forceinline__ void forward_body(const T* __restrict__ x, const T* __restrict__ w,
                                             const T* __restrict__ bias, T* __restrict__ y, I N,
                                             I C, I H, I W, I O, I kh, I kw, I sh, I sw, I ph,
                                             I pw, I OH, I OW, int has_bias) {
    const I OHW = OH * OW, M = O, P = N * OHW, K = C * kh * kw;
    I s, m0, p0;
    if (!tile_of_block<I, BM>(M, P, I(1), s, m0, p0)) return;
    const Forward<T, I> op{x, w, C, H, W, K, kh * kw, kw, OHW, OW, sh, sw, ph, pw};
    T acc[TM][TN];
    mainloop<T, I, BM, TF32>(op, M, P, I(0), K, m0, p0, acc);
    store_planes<T, I, BM, TF32>(acc, y, has_bias ? bias : nullptr, M, P, m0, p0, OHW);
}

// --- input gradient: dx = w^T @ dy, scattered back through the taps (as a gather) --------

template <typename T, typename I>
struct InputGrad {
    const T* dy;
    const T* w;
    I C, H, W, O, khkw, kw, OHW, OH, OW, sh, sw, ph, pw;
    struct KInfo {
        I woff, dyoff, i, j;  // k = (o, i, j): woff = o*C*kh*kw + i*kw + j, dyoff = o*OH*OW
    };
    struct Col {
        I base, hp, wp;  // p = (n, h, w): base = n*O*OH*OW, hp = h + ph, wp = w + pw
    };
    static constexpr bool B_K_FAST = false;  // dy is contiguous along ow, so along w (p)

    __device__ KInfo k_info(I k) const {
        const I o = k / khkw, r = k % khkw;
        return KInfo{o * C * khkw + r, o * OHW, r / kw, r % kw};
    }
    __device__ Col col(I p) const {
        const I n = p / (H * W), l = p % (H * W);
        return Col{n * O * OHW, l / W + ph, l % W + pw};
    }
    __device__ T a(I m, const KInfo& k) const { return w[k.woff + m * khkw]; }
    __device__ T b(const KInfo& k, const Col& c) const {
        I oh = c.hp - k.i, ow = c.wp - k.j;  // times the strides
        if (oh < 0 || ow < 0) return T(0);
        if (sh != 1) {
            if (oh % sh != 0) return T(0);
            oh /= sh;
        }
        if (sw != 1) {
            if (ow % sw != 0) return T(0);
            ow /= sw;
        }
        return (oh < OH && ow < OW) ? dy[c.base + k.dyoff + oh * OW + ow] : T(0);
    }
};

template <typename T, typename I, int BM, bool TF32>
__device__ __forceinline__ void input_grad_body(const T* __restrict__ dy, const T* __restrict__ w,
                                                T* __restrict__ dx, I N, I C, I H, I W, I O, I kh,
                                                I kw, I sh, I sw, I ph, I pw, I OH, I OW) {
    const I HW = H * W, M = C, P = N * HW, K = O * kh * kw;
    I s, m0, p0;
    if (!tile_of_block<I, BM>(M, P, I(1), s, m0, p0)) return;
    const InputGrad<T, I> op{dy, w, C, H, W, O, kh * kw, kw, OH * OW, OH, OW, sh, sw, ph, pw};
    T acc[TM][TN];
    mainloop<T, I, BM, TF32>(op, M, P, I(0), K, m0, p0, acc);
    store_planes<T, I, BM, TF32>(acc, dx, nullptr, M, P, m0, p0, HW);
}

// --- weight gradient: dW = dy (O, N*OH*OW) @ cols(x)^T, the long K cut into splits -------

template <typename T, typename I>
struct WeightGrad {
    const T* x;
    const T* dy;
    I O, C, H, W, OHW, OW, sh, sw, ph, pw, khkw, kw;
    struct KInfo {
        I dyoff, xbase, hb, wb;  // k = (n, oh, ow): dyoff = n*O*OH*OW + oh*OW + ow, ...
    };
    struct Col {
        I off, i, j;  // p = (c, i, j): off = c*H*W + i*W + j
    };
    static constexpr bool B_K_FAST = true;  // x is contiguous along ow, i.e. along k

    __device__ KInfo k_info(I k) const {
        const I n = k / OHW, l = k % OHW;
        return KInfo{n * O * OHW + l, n * C * H * W, (l / OW) * sh - ph, (l % OW) * sw - pw};
    }
    __device__ Col col(I p) const {
        const I c = p / khkw, r = p % khkw, i = r / kw, j = r % kw;
        return Col{(c * H + i) * W + j, i, j};
    }
    __device__ T a(I m, const KInfo& k) const { return dy[k.dyoff + m * OHW]; }
    __device__ T b(const KInfo& k, const Col& c) const {
        const I h = k.hb + c.i, wx = k.wb + c.j;
        return (h >= 0 && h < H && wx >= 0 && wx < W) ? x[k.xbase + c.off + k.hb * W + k.wb] : T(0);
    }
};

template <typename T, typename I, int BM, bool TF32>
__device__ __forceinline__ void weight_grad_body(const T* __restrict__ x, const T* __restrict__ dy,
                                                 T* __restrict__ out, I N, I C, I H, I W, I O,
                                                 I kh, I kw, I sh, I sw, I ph, I pw, I OH, I OW,
                                                 I splits, I chunk) {
    const I OHW = OH * OW, M = O, P = C * kh * kw, K = N * OHW;
    I s, m0, p0;
    if (!tile_of_block<I, BM>(M, P, splits, s, m0, p0)) return;
    const WeightGrad<T, I> op{x, dy, O, C, H, W, OHW, OW, sh, sw, ph, pw, kh * kw, kw};
    const I k_begin = s * chunk, k_end = k_begin + chunk < K ? k_begin + chunk : K;
    T acc[TM][TN];
    mainloop<T, I, BM, TF32>(op, M, P, k_begin, k_end, m0, p0, acc);
    T* slice = out + s * M * P;
    using Where = Piece<BM, UseMma<TF32>::value>;
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) {
            const I m = m0 + Where::row(i, j), p = p0 + Where::col(i, j);
            if (m < M && p < P) slice[m * P + p] = acc[i][j];
        }
}

// out[t] = ws[0*total + t] + ws[1*total + t] + ... (splits slices, in order)
template <typename T>
__device__ __forceinline__ void sum_splits_body(const T* __restrict__ ws, T* __restrict__ out,
                                                long long total, long long splits) {
    MINICNN_GRID_STRIDE(t, total) {
        T acc = ws[t];
        for (long long s = 1; s < splits; ++s) acc += ws[s * total + t];
        out[t] = acc;
    }
}

}  // namespace igemm
}  // namespace minicnn

// (x, w, b, y, N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW, has_bias): b may be any
// pointer when has_bias is 0; (dy, w, dx, N, C, ..., OW); (x, dy, out, N, C, ..., OW,
// splits, chunk): out is dW (O, C, kh, kw) when splits is 1, else (splits, O, C*kh*kw).
#define MINICNN_IGEMM_KERNELS_BM(SUF, T, I, BM, TF32)                                                  \
    extern "C" __global__ void __launch_bounds__(256) conv2d_igemm_forward_m##BM##_##SUF(        \
        const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,               \
        T* __restrict__ y, long long N, long long C, long long H, long long W, long long O,      \
        long long kh, long long kw, long long sh, long long sw, long long ph, long long pw,      \
        long long OH, long long OW, int has_bias) {                                              \
        minicnn::igemm::forward_body<T, I, BM, TF32>(x, w, b, y, (I)N, (I)C, (I)H, (I)W, (I)O, (I)kh, \
                                               (I)kw, (I)sh, (I)sw, (I)ph, (I)pw, (I)OH, (I)OW,  \
                                               has_bias);                                        \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) conv2d_igemm_input_grad_m##BM##_##SUF(     \
        const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx, long long N,      \
        long long C, long long H, long long W, long long O, long long kh, long long kw,          \
        long long sh, long long sw, long long ph, long long pw, long long OH, long long OW) {    \
        minicnn::igemm::input_grad_body<T, I, BM, TF32>(dy, w, dx, (I)N, (I)C, (I)H, (I)W, (I)O,      \
                                                  (I)kh, (I)kw, (I)sh, (I)sw, (I)ph, (I)pw,      \
                                                  (I)OH, (I)OW);                                 \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) conv2d_igemm_weight_grad_m##BM##_##SUF(    \
        const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ out, long long N,     \
        long long C, long long H, long long W, long long O, long long kh, long long kw,          \
        long long sh, long long sw, long long ph, long long pw, long long OH, long long OW,      \
        long long splits, long long chunk) {                                                     \
        minicnn::igemm::weight_grad_body<T, I, BM, TF32>(x, dy, out, (I)N, (I)C, (I)H, (I)W, (I)O,    \
                                                   (I)kh, (I)kw, (I)sh, (I)sw, (I)ph, (I)pw,     \
                                                   (I)OH, (I)OW, (I)splits, (I)chunk);           \
    }

#define MINICNN_IGEMM_KERNELS(SUF, T, I, TF32)    \
    MINICNN_IGEMM_KERNELS_BM(SUF, T, I, 16, TF32) \
    MINICNN_IGEMM_KERNELS_BM(SUF, T, I, 32, TF32) \
    MINICNN_IGEMM_KERNELS_BM(SUF, T, I, 64, TF32)

#define MINICNN_IGEMM_SUM_KERNEL(SUF, T)                                                         \
    extern "C" __global__ void igemm_sum_splits_##SUF(const T* __restrict__ ws,                  \
                                                      T* __restrict__ out, long long total,      \
                                                      long long splits) {                        \
        minicnn::igemm::sum_splits_body<T>(ws, out, total, splits);                              \
    }

MINICNN_IGEMM_KERNELS(f32_i32, float, int, false)
MINICNN_IGEMM_KERNELS(f32_i64, float, long long, false)
MINICNN_IGEMM_KERNELS(tf32_i32, float, int, true)
MINICNN_IGEMM_KERNELS(tf32_i64, float, long long, true)
MINICNN_IGEMM_KERNELS(f64_i32, double, int, false)
MINICNN_IGEMM_KERNELS(f64_i64, double, long long, false)
MINICNN_IGEMM_SUM_KERNEL(f32, float)
MINICNN_IGEMM_SUM_KERNEL(f64, double)
