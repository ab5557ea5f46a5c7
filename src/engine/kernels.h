// kernels.h: the raw-pointer loops under ops.cpp that carry the speed machinery: how work
// is split over the OpenMP threads, the deterministic partial sums, the batched GEMMs over
// strided heads and the causal block skipping. ops.cpp calls them, so that each op there
// reads as its forward formula beside its backward formula.
//
// Determinism (see blas.h for the measured threading policy): every loop here has a static
// schedule and every sum a fixed order for a given thread count, so the same seed and the
// same number of threads give the same bits.
#pragma once

#include <omp.h>

#include <cstdint>

#include "engine/tensor.h"

namespace synth::kernel {

// Element and row loops only go parallel when there is enough work to pay for the fork.
constexpr int64_t kParallelMin = 1 << 15;

// Whether a kernel writes its result or adds it to what is there (a gradient).
enum class Write { Assign, Accumulate };

// y (rows, n) = b (n) on every row.
void fill_rows(const float* b, int64_t rows, int n, float* y);

// db (cols) += sum over r of dy (rows, cols), split by columns across threads so each sum is
// serial: deterministic.
void colsum_add(const float* dy, int64_t rows, int cols, float* db);

// db (H, ld)[h, :n] += the sum over batch and time of dy (B, H, T, n)[b, h]; the heads in
// parallel, each sum serial.
void head_colsum_add(const float* dy, int B, int H, int T, int n, float* db, int ld);

// Runs row(r, partial) for every r < rows, on the OpenMP threads if `parallel`; each thread
// adds into its own zeroed `width` floats `partial`. Then add(partial) is called for each
// thread's sums in thread order, so the totals are deterministic (layernorm's dg and db).
template <class Row, class Add>
void rows_with_partial_sums(int64_t rows, int width, bool parallel, Row row, Add add) {
    const int nt = omp_get_max_threads();
    float* part = scratch().alloc_zero((size_t)nt * width);
#pragma omp parallel if (parallel)
    {
        float* mine = part + (size_t)omp_get_thread_num() * width;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) row(r, mine);
    }
    for (int t = 0; t < nt; ++t) add(part + (size_t)t * width);
}

// bits[i] = bf16_bits(x[i]) for i < n: a row's bf16 companion (Bf16Companions, blas.h),
// written by the op that has just made the row, while it is in cache.
void bf16_row(const float* x, int n, uint16_t* bits);

// (B, T, H, D) -> (B, H, T, D) with ToHeads, the reverse with FromHeads.
enum class Heads { ToHeads, FromHeads };
void permute_heads(const float* src, float* dst, int B, int T, int H, int D, Heads direction, Write write);

// ---- batched GEMM over (batch, head) ---------------------------------------------------
// How a batch of (batch, head) matrices lies in memory: matrix (bi, h) starts at
// bi * batch + h * head and its rows are ld apart. A stride of 0 shares one matrix.
struct Strided {
    int64_t batch, head;
    int ld;
    // A contiguous (batch, heads, rows, ld) array; a batch (or head count) of 1 is shared by
    // every batch element (every head).
    static Strided contiguous(int batch, int heads, int rows, int ld);
    // The heads of a (B, T, H*D) activation, read in place (no split_heads copy): head h is
    // the (T, D) block of columns [h*D, (h+1)*D).
    static Strided heads_of(int T, int H, int D);

    const float* at(const float* p, int bi, int h) const { return p + bi * batch + h * head; }
    float* at(float* p, int bi, int h) const { return p + bi * batch + h * head; }
};

// Causal attention needs only the lower triangle: query row i sees keys j <= i + q_offset.
// A product can skip what lies above it in blocks of rows: for rows [i0, i1) only the first
// i1 + q_offset keys matter. Scores (Q K^T) limit the output columns N; mixing values (P V,
// P zero above the diagonal) limits the inner dimension K. With 64-row blocks a 128-token
// sequence does 3/4 of the work, a 1024-token one 17/32.
struct Causal {
    enum Limit { None, OutputColumns, InnerDim } limit = None;
    int q_offset = 0;
};

// c(bi, h) (M, N) = op(a(bi, h)) (M, K) op(b(bi, h)) (K, N) for bi < batch, h < heads.
struct BatchedGemm {
    int batch, heads, M, N, K;
    Strided a;
    Transpose ta;
    Strided b;
    Transpose tb;
    Strided c;
    Causal causal;
};

// One single-threaded GEMM per (batch, head) on each OpenMP thread (blas.h), or per block of
// rows under `causal`, which needs ta == No (rows of C are rows of A). With OutputColumns, the
// columns a block skips are set to 0, and the gradient arriving there must be 0, as a causal
// softmax's is; with InnerDim, a must be 0 above the diagonal. Where the GEMM provider batches
// (gemm_batches_in_one_call: onednn-bf16), the whole products are one sgemm_batched call
// instead, the skipped columns cleared the same way: the same C up to summation order.
void batched_gemm_forward(const BatchedGemm& g, const float* a, const float* b, float* c);
// da += dc op(b)^T and db += op(a)^T dc (either may be nullptr), block by block over the
// extents the forward used (whole, where the provider batches); under InnerDim the gradient
// left for a above the diagonal is incomplete or, whole, complete (a causal softmax never
// reads it).
void batched_gemm_backward(const BatchedGemm& g, const float* a, const float* b, const float* dc, float* da,
                           float* db);

}  // namespace synth::kernel
