#include "engine/kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/gemm/bf16.h"
#include "engine/gemm/blas.h"
#include "base/error.h"
#include "engine/profile.h"

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

void bf16_row(const float* x, int n, uint16_t* bits) {
#pragma omp simd
    for (int i = 0; i < n; ++i) bits[i] = bf16_bits(x[i]);
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

// Rows [i0, i0 + rows) of C for the extents they used: the columns a causal block skips are 0,
// and so is a row that sees no keys at all.
static void clear_skipped(const BatchedGemm& g, float* C, int i0, int rows) {
    const int n = extent(g, i0, rows, Causal::OutputColumns, g.N), k = extent(g, i0, rows, Causal::InnerDim, g.K);
    const int from = k > 0 ? n : 0;
    if (from < g.N)
        for (int r = 0; r < rows; ++r) std::memset(C + (int64_t)r * g.c.ld + from, 0, (size_t)(g.N - from) * sizeof(float));
}

static BatchStride batch_stride(const Strided& s) { return {s.batch, s.head}; }

void batched_gemm_forward(const BatchedGemm& g, const float* a, const float* b, float* c) {
    SYNTH_CHECK(g.causal.limit == Causal::None || g.ta == Transpose::No, "batched_gemm: causal blocks need rows of a");
    const bool ta = g.ta == Transpose::Yes, tb = g.tb == Transpose::Yes;
    const int M = g.M, N = g.N, K = g.K, block = block_rows(g);
    const profile::Gemm prof(2.0 * g.batch * g.heads * M * N * K);
    if (gemm_batches_in_one_call()) {
        // Whole products in one call: what causal blocks would skip is computed too (there a is
        // 0, or the result is cleared below), since one large call beats many small ones.
        sgemm_batched(g.batch, g.heads, ta, tb, M, N, K, 1.0f, a, batch_stride(g.a), g.a.ld, b, batch_stride(g.b),
                      g.b.ld, 0.0f, c, batch_stride(g.c), g.c.ld);
        if (g.causal.limit == Causal::OutputColumns)
#pragma omp parallel for collapse(2)
            for (int bi = 0; bi < g.batch; ++bi)
                for (int h = 0; h < g.heads; ++h)
                    for (int i0 = 0; i0 < M; i0 += block)
                        clear_skipped(g, g.c.at(c, bi, h) + (int64_t)i0 * g.c.ld, i0, std::min(block, M - i0));
        return;
    }
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
                clear_skipped(g, C, i0, rows);
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

// d(bi, h) += op(x(bi, h)) op(y(bi, h)) (rows x cols, inner dimension k) for every (batch,
// head) in one sgemm_batched call. A d shared by several (batch, head) (stride 0) receives their
// sum: the products go to scratch first, then add up in a fixed order.
static void accumulate_batched(const BatchedGemm& g, float* d, Strided sd, bool tx, bool ty, int rows, int cols,
                               int k, const float* x, Strided sx, const float* y, Strided sy) {
    const int B = g.batch, H = g.heads;
    const bool own = (sd.batch != 0 || B == 1) && (sd.head != 0 || H == 1);
    if (own) {
        sgemm_batched(B, H, tx, ty, rows, cols, k, 1.0f, x, batch_stride(sx), sx.ld, y, batch_stride(sy), sy.ld, 1.0f,
                      d, batch_stride(sd), sd.ld);
        return;
    }
    thread_local std::vector<float> scratch;  // (B, H, rows, cols); only grows: no zero-fill per call
    const int64_t plane = (int64_t)rows * cols;
    if (scratch.size() < (size_t)(B * H * plane)) scratch.resize((size_t)(B * H * plane));
    sgemm_batched(B, H, tx, ty, rows, cols, k, 1.0f, x, batch_stride(sx), sx.ld, y, batch_stride(sy), sy.ld, 0.0f,
                  scratch.data(), {H * plane, plane}, cols);
    const int dB = sd.batch != 0 ? B : 1, dH = sd.head != 0 ? H : 1;
    const float* s = scratch.data();
#pragma omp parallel for collapse(3)
    for (int i = 0; i < dB; ++i)
        for (int j = 0; j < dH; ++j)
            for (int r = 0; r < rows; ++r) {
                float* out = sd.at(d, i, j) + (int64_t)r * sd.ld;
                for (int bi = dB == 1 ? 0 : i; bi < (dB == 1 ? B : i + 1); ++bi)
                    for (int h = dH == 1 ? 0 : j; h < (dH == 1 ? H : j + 1); ++h) {
                        const float* p = s + (bi * H + h) * plane + (int64_t)r * cols;
                        for (int c = 0; c < cols; ++c) out[c] += p[c];
                    }
            }
}

void batched_gemm_backward(const BatchedGemm& g, const float* a, const float* b, const float* dc, float* da,
                           float* db) {
    const bool ta = g.ta == Transpose::Yes, tb = g.tb == Transpose::Yes;
    const int M = g.M, N = g.N, K = g.K, block = block_rows(g);
    const Strided sa = g.a, sb = g.b, sc = g.c;
    const profile::Gemm prof(2.0 * g.batch * g.heads * M * N * K * ((da ? 1 : 0) + (db ? 1 : 0)));
    if (gemm_batches_in_one_call()) {
        // The whole products, as the forward computed them; where causal blocks would skip,
        // dc (or a) is 0, so the sums are those of the blocked path (but for InnerDim's da above
        // the diagonal, which the blocked path leaves incomplete). dc feeds both products.
        const GemmOperandReuse reuse;
        if (da) {
            if (ta) accumulate_batched(g, da, sa, tb, true, K, M, N, b, sb, dc, sc);
            else accumulate_batched(g, da, sa, false, !tb, M, K, N, dc, sc, b, sb);
        }
        if (db) {
            if (ta && !tb) accumulate_batched(g, db, sb, false, false, K, N, M, a, sa, dc, sc);
            else if (ta) accumulate_batched(g, db, sb, true, true, N, K, M, dc, sc, a, sa);
            else if (!tb) accumulate_batched(g, db, sb, true, false, K, N, M, a, sa, dc, sc);
            else accumulate_batched(g, db, sb, true, false, N, K, M, dc, sc, a, sa);
        }
        return;
    }
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
