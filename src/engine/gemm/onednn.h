// onednn.h: oneDNN's matmul primitive (Debian libdnnl-dev), the provider of bf16 GEMMs on
// CPUs with AMX or AVX512-BF16 (precision.h chooses it; docs/precision.md has the measurements).
//
// `make ONEDNN=0` builds a stub of the same API instead (onednn_built() false, no bf16 matmul,
// the GEMMs throw "not built with oneDNN"), for machines without libdnnl (README).
//
// Only blas.cpp and precision.cpp call this; the rest of synth multiplies through synth::sgemm.
// The same row-major contract as sgemm: C = alpha * op(A) * op(B) + beta * C, op(A): M x K,
// op(B): K x N, C (fp32): M x N, lda/ldb/ldc the row strides of A, B, C as stored. A transpose
// is a stride (oneDNN matmul takes arbitrary strides), alpha an output scale, beta a sum post-op.
//
// The batched form multiplies a (batch, heads) grid of such matrices in one primitive: the
// attention products, one per (batch, head), are 1-2 MFLOP each, too small to pay a call of
// their own (docs/precision.md has the measurement), but 64-256 MFLOP as one batch.
//
// Creating a primitive is slow (JIT code generation, ~0.1-1 ms), so primitives are cached per
// (data type, shape, transposes, strides, alpha, beta) in a cache of each thread's own, as are
// the stream they run on; no locks. Called inside an OpenMP parallel region a primitive runs
// on the calling thread only, outside one on all threads.
#pragma once

#include <cstdint>

namespace synth {

enum class OnednnType { F32, BF16 };

// C = alpha * op(A) * op(B) + beta * C with A and B of type `type` (fp32 floats, or bf16 bits as
// uint16_t) and C fp32. With beta == 0, C is not read. Throws synth::Error if oneDNN has no
// implementation for this CPU (bf16 without AVX512-BF16 or AMX).
void onednn_gemm(OnednnType type, bool transA, bool transB, int M, int N, int K, float alpha, const void* A, int lda,
                 const void* B, int ldb, float beta, float* C, int ldc);

// Where matrix (i, j) of a batch starts: at X + i * batch + j * head (elements). A stride of 0
// shares one matrix over that index (oneDNN broadcasts it); C's strides must not be 0.
struct OnednnBatch {
    int64_t batch, head;
};

// C(i, j) = alpha * op(A(i, j)) * op(B(i, j)) + beta * C(i, j) for i < batch, j < heads, in one
// primitive; each matrix as onednn_gemm takes it.
void onednn_gemm_batched(OnednnType type, int batch, int heads, bool transA, bool transB, int M, int N, int K,
                         float alpha, const void* A, OnednnBatch sa, int lda, const void* B, OnednnBatch sb, int ldb,
                         float beta, float* C, OnednnBatch sc, int ldc);

// C = op(A) * op(B) + bias, then max(., 0) if relu, then + add, for bf16 A and B: the bias (N
// floats, or nullptr), the ReLU and the added fp32 matrix (M x N with row stride ldc, or nullptr:
// a residual) ride on the product (oneDNN's bias argument, eltwise and binary post-ops), and C
// is written as bf16 bits (uint16_t) if c_bf16, else as fp32, so that an inference activation
// that only feeds the next product never exists in fp32 (docs/performance.md).
void onednn_gemm_epilogue(bool transA, bool transB, int M, int N, int K, const void* A, int lda, const void* B, int ldb,
                          const float* bias, bool relu, const float* add, void* C, bool c_bf16, int ldc);

// Whether this build has oneDNN (false under `make ONEDNN=0`).
bool onednn_built();

// Whether oneDNN can create a bf16 matmul on this CPU (it can with AVX512-BF16 or AMX).
bool onednn_has_bf16();

// The instruction set oneDNN dispatches to ("Intel AVX-512 with AVX512_BF16 and AMX...", as
// oneDNN names it), and its version, for the line every runner prints.
const char* onednn_isa();
const char* onednn_version();

}  // namespace synth
