// The tiled product that conv_igemm.cu's kernels share: one block of 256 threads sums
// C (M, P) = A (M, K) B (K, P) over one BM x BN tile of C (64 x 64, 32 x 128 or 16 x 256),
// K in steps of BK = 16 through shared memory, the operands gathered by an Op (conv_igemm.cu:
// Forward, InputGrad, WeightGrad) as the tiles are loaded.
//
// Two ways to multiply the tiles:
//   * on the CUDA cores (float and double): each thread a TM x TN = 4 x 4 piece of C, rows
//     ty*4 + i, columns tx*4 + j, exact multiply-adds;
//   * on the tensor cores, TF32 (float only; what PyTorch's cuDNN convolutions do by default):
//     each warp a 16 x 32 piece as four mma.sync.m16n8k8 fragments, the tiles' entries rounded
//     to TF32 (10 mantissa bits, to nearest, ties away: cvt.rna) as they are stored, products
//     summed in FP32. On a GPU before sm_80 (no TF32 mma) the same rounded entries are
//     multiplied on the CUDA cores instead.
// The mma's fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k8", .tf32): lane =
// 4*g + t4; A (16 x 8, row): a0 (g, t4), a1 (g+8, t4), a2 (g, t4+4), a3 (g+8, t4+4);
// B (8 x 8, col): b0 (t4, g), b1 (t4+4, g); C and D (16 x 8): c_q at (g + 8*(q/2), 2*t4 + q%2).
// The host build emulates the instruction with exactly these layouts (host/cuda_host.h).
#ifndef MINICNN_IGEMM_TILE_CUH
#define MINICNN_IGEMM_TILE_CUH

#ifndef MINICNN_COMMON_CUH
#include "common.cuh"
#endif

#if defined(MINICNN_HOST_BUILD) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800)
#define MINICNN_HAS_MMA_TF32 1
#else
#define MINICNN_HAS_MMA_TF32 0
#endif

namespace minicnn {
namespace igemm {

constexpr int THREADS = 256;
constexpr int AREA = 4096;     // BM * BN, the tile of C: 64 x 64, 32 x 128 or 16 x 256
constexpr int BK = 16;         // step along K
constexpr int TM = 4, TN = 4;  // each thread's 16 entries of C (AREA / 16 = THREADS)
constexpr int A_ROWS = THREADS / BK;  // rows of A one pass of the block loads (k fastest)

// Whether a kernel asked for TF32 runs it on the tensor cores here.
template <bool TF32>
struct UseMma {
    static constexpr bool value = TF32 && MINICNN_HAS_MMA_TF32;
};

// Shared rows are BM (BN) + PAD long: 4 keeps them 16-byte multiples (each thread's 4 entries
// load as one vector) with 2-way store conflicts; 8 makes the fragment loads of the mma path
// (rows t4, columns g) conflict-free.
template <bool MMA>
struct Pad {
    static constexpr int value = MMA ? 8 : 4;
};

// x rounded to TF32 (cvt.rna.tf32.f32: to nearest, ties away from zero; inf and NaN kept).
__device__ __forceinline__ float to_tf32(float x) {
    unsigned u = __float_as_uint(x);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    return __uint_as_float(u);
}

// d += a * b for one warp's m16n8k8 fragments (layouts in the header comment).
__device__ __forceinline__ void mma_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2]) {
#if defined(MINICNN_HOST_BUILD)
    minicnn_host::mma_m16n8k8_tf32(d, a, b);
#elif MINICNN_HAS_MMA_TF32
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])),
          "r"(__float_as_uint(a[3])), "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])));
#else
    (void)d, (void)a, (void)b;  // not reached: UseMma is false without the instruction
#endif
}

// Where this thread's entry (i, j) of acc lies in the BM x (AREA / BM) tile.
template <int BM, bool MMA>
struct Piece {
    static constexpr int BN = AREA / BM;
    __device__ static int row(int i, int j) {
        const int t = (int)threadIdx.x;
        if (MMA) {  // warp w: rows (w % (BM/16))*16 + ..., fragment i: columns +8i; entry j = c_j
            const int w = t / 32, lane = t % 32;
            return (w % (BM / 16)) * 16 + lane / 4 + 8 * (j / 2);
        }
        return (t / (BN / TN)) * TM + i;
    }
    __device__ static int col(int i, int j) {
        const int t = (int)threadIdx.x;
        if (MMA) {
            const int w = t / 32, lane = t % 32;
            return (w / (BM / 16)) * 32 + 8 * i + 2 * (lane % 4) + j % 2;
        }
        return (t % (BN / TN)) * TN + j;
    }
};

// acc (this thread's entries, placed as Piece<BM, UseMma<TF32>> says) = the sum over k in
// [k_begin, k_end) of A(m, k) B(k, p) for the tile whose first row is m0 and first column p0.
// Op supplies:
//   KInfo            what index k decomposes into (BK threads compute a step's into
//                    shared memory, so the gathers below need no division by k);
//   Col              what column p of B decomposes into (the tile's, once per block);
//   B_K_FAST         whether B's loads run along k (true) or along p (false) across
//                    consecutive threads: along the axis that is contiguous in memory;
//   k_info(k), col(p), a(m, KInfo), b(KInfo, Col).
// Each step's tile entries are gathered into registers while the step before is being
// multiplied (the loads' latency hidden behind the arithmetic), then stored to shared
// memory; the k decompositions alternate between two shared buffers for the same reason.
template <typename T, typename I, int BM, bool TF32, typename Op>
__device__ __forceinline__ void mainloop(const Op& op, I M, I P, I k_begin, I k_end, I m0, I p0,
                                         T (&acc)[TM][TN]) {
    constexpr bool MMA = UseMma<TF32>::value;
    constexpr int BN = AREA / BM, PAD = Pad<MMA>::value;
    constexpr int A_LOADS = BM * BK / THREADS, B_LOADS = BN * BK / THREADS;  // per thread, per step
    __shared__ __align__(16) T As[BK][BM + PAD];
    __shared__ __align__(16) T Bs[BK][BN + PAD];
    __shared__ typename Op::KInfo kinfo[2][BK];  // step s uses kinfo[s % 2]
    __shared__ bool kvalid[2][BK];
    __shared__ typename Op::Col colinfo[BN];
    __shared__ bool colvalid[BN];

    const int t = (int)threadIdx.x;
    for (int q = t; q < BN; q += THREADS) {
        const I p = p0 + q;
        colvalid[q] = p < P;
        colinfo[q] = op.col(p < P ? p : p0);
    }
    const int a_k = t % BK, a_m = t / BK;  // A: rows a_m + A_ROWS*r, r < A_LOADS
    // B: element r of this thread's loads is (b_k + b_k_step*r, b_p + b_p_step*r)
    const int b_k = Op::B_K_FAST ? t % BK : t / BN, b_p = Op::B_K_FAST ? t / BK : t % BN;
    const int b_k_step = Op::B_K_FAST ? 0 : THREADS / BN, b_p_step = Op::B_K_FAST ? THREADS / BK : 0;
    // the k decomposition of the step starting at k0 into kinfo[buf] (threads t < BK)
    auto describe = [&](I k0, int buf) {
        if (t < BK) {
            const I k = k0 + t;
            kvalid[buf][t] = k < k_end;
            kinfo[buf][t] = op.k_info(k < k_end ? k : k0);
        }
    };
    // this thread's entries of the step described in kinfo[buf], into registers
    T ra[A_LOADS], rb[B_LOADS];
    auto gather = [&](int buf) {
        MINICNN_UNROLL for (int r = 0; r < A_LOADS; ++r) {
            const I m = m0 + a_m + A_ROWS * r;
            ra[r] = (m < M && kvalid[buf][a_k]) ? op.a(m, kinfo[buf][a_k]) : T(0);
        }
        MINICNN_UNROLL for (int r = 0; r < B_LOADS; ++r) {
            const int kk = b_k + b_k_step * r, pp = b_p + b_p_step * r;
            rb[r] = (colvalid[pp] && kvalid[buf][kk]) ? op.b(kinfo[buf][kk], colinfo[pp]) : T(0);
        }
    };
    MINICNN_UNROLL for (int i = 0; i < TM; ++i)
        MINICNN_UNROLL for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    describe(k_begin, 0);
    __syncthreads();  // colinfo and the first step's kinfo ready
    gather(0);
    int buf = 0;
    for (I k0 = k_begin; k0 < k_end; k0 += BK, buf ^= 1) {
        MINICNN_UNROLL for (int r = 0; r < A_LOADS; ++r) {
            T v = ra[r];
            if constexpr (TF32) v = to_tf32(v);
            As[a_k][a_m + A_ROWS * r] = v;
        }
        MINICNN_UNROLL for (int r = 0; r < B_LOADS; ++r) {
            T v = rb[r];
            if constexpr (TF32) v = to_tf32(v);
            Bs[b_k + b_k_step * r][b_p + b_p_step * r] = v;
        }
        const bool more = k0 + BK < k_end;
        if (more) describe(k0 + BK, buf ^ 1);  // last read two steps ago, before a barrier
        __syncthreads();  // the tiles and the next step's kinfo ready
        if (more) gather(buf ^ 1);  // in flight during the arithmetic below
        if constexpr (MMA) {
            const int w = t / 32, g = (t % 32) / 4, t4 = t % 4;
            const int wm = (w % (BM / 16)) * 16, wn = (w / (BM / 16)) * 32;
            MINICNN_UNROLL for (int ks = 0; ks < BK; ks += 8) {
                const float a[4] = {As[ks + t4][wm + g], As[ks + t4][wm + g + 8], As[ks + t4 + 4][wm + g],
                                    As[ks + t4 + 4][wm + g + 8]};
                MINICNN_UNROLL for (int i = 0; i < TM; ++i) {
                    const float b[2] = {Bs[ks + t4][wn + 8 * i + g], Bs[ks + t4 + 4][wn + 8 * i + g]};
                    mma_tf32(acc[i], a, b);
                }
            }
        } else {
            const int ty = t / (BN / TN), tx = t % (BN / TN);
            MINICNN_UNROLL for (int kk = 0; kk < BK; ++kk) {
                T av[TM], bv[TN];
                MINICNN_UNROLL for (int i = 0; i < TM; ++i) av[i] = As[kk][ty * TM + i];
                MINICNN_UNROLL for (int j = 0; j < TN; ++j) bv[j] = Bs[kk][tx * TN + j];
                MINICNN_UNROLL for (int i = 0; i < TM; ++i)
                    MINICNN_UNROLL for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
            }
        }
        __syncthreads();  // every thread done with the tiles before the next step stores
    }
}

// Block b of a grid of splits * tiles_m * tiles_n (BM x AREA/BM tiles): its split and
// tile origin. False for a block past the end (the whole block returns before any barrier).
template <typename I, int BM>
__device__ __forceinline__ bool tile_of_block(I M, I P, I splits, I& s, I& m0, I& p0) {
    constexpr int BN = AREA / BM;
    if (blockDim.x != (unsigned)THREADS) return false;
    const I tiles_m = (M + BM - 1) / BM, tiles_n = (P + BN - 1) / BN;
    I b = (I)blockIdx.x;
    if (b >= splits * tiles_m * tiles_n) return false;
    const I tn = b % tiles_n;
    b /= tiles_n;
    m0 = (b % tiles_m) * BM;
    s = b / tiles_m;
    p0 = tn * BN;
    return true;
}

}  // namespace igemm
}  // namespace minicnn

#endif  // MINICNN_IGEMM_TILE_CUH
