#include "kernels.h"

#include <algorithm>
#include <cstring>

#include "blas.h"
#include "common.h"

namespace synth::kernel {

void fill_rows(const float* b, int64_t rows, int n, float* y) {
#pragma omp parallel for if (rows * n > kParallelMin)
    for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * n, b, n * sizeof(float));
}

void colsum_add(const float* dy, int64_t rows, int cols, float* db) {
#pragma omp parallel if (rows * cols > kParallelMin)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int c0 = (int)((int64_t)cols * id / nt), c1 = (int)((int64_t)cols * (id + 1) / nt);
        for (int64_t r = 0; r < rows; ++r) {
            const float* row = dy + r * cols;
            for (int c = c0; c < c1; ++c) db[c] += row[c];
        }
    }
}

void head_colsum_add(const float* dy, int B, int H, int T, int n, float* db, int ld) {
#pragma omp parallel for
    for (int h = 0; h < H; ++h)
        for (int bi = 0; bi < B; ++bi) colsum_add(dy + ((int64_t)bi * H + h) * T * n, T, n, db + (int64_t)h * ld);
}

void permute_heads(const float* src, float* dst, int B, int T, int H, int D, Heads direction, Write write) {
    const bool to_heads = direction == Heads::ToHeads;
#pragma omp parallel for collapse(2) if ((int64_t)B * T * H * D > kParallelMin)
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < H; ++h)
            for (int t = 0; t < T; ++t) {
                const int64_t bthd = (((int64_t)b * T + t) * H + h) * D;
                const int64_t bhtd = (((int64_t)b * H + h) * T + t) * D;
                const float* s = src + (to_heads ? bthd : bhtd);
                float* d = dst + (to_heads ? bhtd : bthd);
                if (write == Write::Accumulate)
                    for (int i = 0; i < D; ++i) d[i] += s[i];
                else
                    std::memcpy(d, s, D * sizeof(float));
            }
}

// ---- batched GEMM ------------------------------------------------------------------------
Strided Strided::contiguous(int batch, int heads, int rows, int ld) {
    const int64_t plane = (int64_t)rows * ld;
    return {batch == 1 ? 0 : heads * plane, heads == 1 ? 0 : plane, ld};
}

Strided Strided::heads_of(int T, int H, int D) { return {(int64_t)T * H * D, D, H * D}; }

static constexpr int kCausalBlock = 64;

static int block_rows(const BatchedGemm& g) {
    return g.causal.limit == Causal::None ? std::max(g.M, 1) : kCausalBlock;
}

// The extent of N (or K) that rows [i0, i0 + block) use: `full` unless `which` is limited.
static int extent(const BatchedGemm& g, int i0, int block, Causal::Limit which, int full) {
    if (g.causal.limit != which) return full;
    return std::max(0, std::min(full, std::min(g.M, i0 + block) + g.causal.q_offset));
}

void batched_gemm_forward(const BatchedGemm& g, const float* a, const float* b, float* c) {
    SYNTH_CHECK(g.causal.limit == Causal::None || g.ta == Transpose::No, "batched_gemm: causal blocks need rows of a");
    const bool ta = g.ta == Transpose::Yes, tb = g.tb == Transpose::Yes;
    const int M = g.M, N = g.N, K = g.K, block = block_rows(g);
#pragma omp parallel for collapse(2)
    for (int bi = 0; bi < g.batch; ++bi)
        for (int h = 0; h < g.heads; ++h)
            for (int i0 = 0; i0 < M; i0 += block) {
                const int rows = std::min(block, M - i0), n = extent(g, i0, block, Causal::OutputColumns, N);
                const int k = extent(g, i0, block, Causal::InnerDim, K);
                float* C = g.c.at(c, bi, h) + (int64_t)i0 * g.c.ld;
                if (k > 0)
                    sgemm(ta, tb, rows, n, k, 1.0f, g.a.at(a, bi, h) + (int64_t)i0 * g.a.ld, g.a.ld, g.b.at(b, bi, h),
                          g.b.ld, 0.0f, C, g.c.ld);
                const int from = k > 0 ? n : 0;  // no keys at all: the whole row is 0
                if (from < N)
                    for (int r = 0; r < rows; ++r)
                        std::memset(C + (int64_t)r * g.c.ld + from, 0, (size_t)(N - from) * sizeof(float));
            }
}

// Calls grad(bi, h) for every (batch, head). A shared operand's gradient sums over what it is
// shared by (the batch; also the heads for one matrix shared by all): that sum stays serial.
// Different heads of a (B, T, H*D) gradient are disjoint column blocks: no race.
template <class Grad>
static void for_each_matrix(const BatchedGemm& g, Strided s, Grad grad) {
    const int B = g.batch, H = g.heads;
    const bool per_batch = s.batch != 0 || B == 1, per_head = s.head != 0 || H == 1;
    if (per_batch && per_head) {
#pragma omp parallel for collapse(2)
        for (int bi = 0; bi < B; ++bi)
            for (int h = 0; h < H; ++h) grad(bi, h);
    } else if (per_head) {
#pragma omp parallel for
        for (int h = 0; h < H; ++h)
            for (int bi = 0; bi < B; ++bi) grad(bi, h);
    } else {
        for (int h = 0; h < H; ++h)
            for (int bi = 0; bi < B; ++bi) grad(bi, h);
    }
}

void batched_gemm_backward(const BatchedGemm& g, const float* a, const float* b, const float* dc, float* da,
                           float* db) {
    const bool ta = g.ta == Transpose::Yes, tb = g.tb == Transpose::Yes;
    const int M = g.M, N = g.N, K = g.K, block = block_rows(g);
    const Strided sa = g.a, sb = g.b, sc = g.c;
    // d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, written for the stored layouts.
    auto grad_a = [&](int bi, int h) {
        const float *dC = sc.at(dc, bi, h), *Bm = sb.at(b, bi, h);
        float* dA = sa.at(da, bi, h);
        if (ta) {
            sgemm(tb, true, K, M, N, 1.0f, Bm, sb.ld, dC, sc.ld, 1.0f, dA, sa.ld);
            return;
        }
        for (int i0 = 0; i0 < M; i0 += block) {
            const int rows = std::min(block, M - i0), n = extent(g, i0, block, Causal::OutputColumns, N);
            const int k = extent(g, i0, block, Causal::InnerDim, K);
            if (n > 0 && k > 0)
                sgemm(false, !tb, rows, k, n, 1.0f, dC + (int64_t)i0 * sc.ld, sc.ld, Bm, sb.ld, 1.0f,
                      dA + (int64_t)i0 * sa.ld, sa.ld);
        }
    };
    auto grad_b = [&](int bi, int h) {
        const float *dC = sc.at(dc, bi, h), *Am = sa.at(a, bi, h);
        float* dB = sb.at(db, bi, h);
        if (ta) {
            if (!tb) sgemm(false, false, K, N, M, 1.0f, Am, sa.ld, dC, sc.ld, 1.0f, dB, sb.ld);
            else sgemm(true, true, N, K, M, 1.0f, dC, sc.ld, Am, sa.ld, 1.0f, dB, sb.ld);
            return;
        }
        for (int i0 = 0; i0 < M; i0 += block) {
            const int rows = std::min(block, M - i0), n = extent(g, i0, block, Causal::OutputColumns, N);
            const int k = extent(g, i0, block, Causal::InnerDim, K);
            if (n == 0 || k == 0) continue;
            const float *Ai = Am + (int64_t)i0 * sa.ld, *dCi = dC + (int64_t)i0 * sc.ld;
            if (!tb) sgemm(true, false, k, n, rows, 1.0f, Ai, sa.ld, dCi, sc.ld, 1.0f, dB, sb.ld);
            else sgemm(true, false, n, k, rows, 1.0f, dCi, sc.ld, Ai, sa.ld, 1.0f, dB, sb.ld);
        }
    };
    if (da) for_each_matrix(g, sa, grad_a);
    if (db) for_each_matrix(g, sb, grad_b);
}

}  // namespace synth::kernel
