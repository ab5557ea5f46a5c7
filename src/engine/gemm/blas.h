// blas.h: the one door to OpenBLAS. Kernel selection, thread ownership, and a row-major sgemm.
//
// The rest of synth never includes <cblas.h>: every matrix product goes through synth::sgemm,
// so the BLAS can be swapped, checked (sgemm_naive) and benchmarked (build/bench) in one place.
//
// KERNEL SELECTION. Debian's OpenBLAS is a DYNAMIC_ARCH build: at library load time a
// constructor reads CPUID (or the environment variable OPENBLAS_CORETYPE) and binds one set of
// kernels for the life of the process. When it does not recognise the CPU (new models,
// hypervisors that mask CPUID) it falls back to an SSE kernel such as "Prescott", several times
// slower on an AVX2 machine; an AVX2 kernel on an AVX-512 CPU is 1.6-1.8x slower there
// (docs/performance.md has the measurements). Since the choice is
// frozen at load time, setenv() from main() is too late (tests/test_blas.cpp checks this);
// blas_select_kernel therefore sets OPENBLAS_CORETYPE and re-executes the program, once.
//
// THREAD OWNERSHIP. The machine has few cores, and two thread pools could fight over them:
// OpenMP (our kernels) and OpenBLAS's own threads. Rule: OpenMP owns all n threads
// (set_threads(n)); OpenBLAS always runs single-threaded, inside our parallel regions.
//   - Large GEMMs (projections and FFN, e.g. 4096x256x256 = (B*T) x d x d) are called from
//     outside any parallel region. synth::sgemm splits C into n blocks of rows (of columns if
//     C is wider than tall) and each OpenMP thread makes one single-threaded OpenBLAS call.
//   - Small batched per-head GEMMs (attention, 128x128x64 and 128x64x128 per (batch, head))
//     run inside `#pragma omp parallel for` over the batch*heads index; each synth::sgemm
//     then runs on the calling thread, and so does OpenBLAS: its OpenMP build goes
//     single-threaded when omp_in_parallel(). (Under onednn-bf16, sgemm_batched makes the
//     whole batch one oneDNN call instead, which splits it over the threads itself.)
//   - Element and row kernels (layernorm, softmax, GELU, AdamW) use `#pragma omp parallel for`.
// Why this split: on few cores one big GEMM fills every thread, so n row blocks of
// single-threaded calls beat OpenBLAS's own threading and never leave two pools competing for
// the same cores; one per-head product (about 2 MFLOP) is too small to share between threads,
// but a batch of them is not, so the parallel loop goes over the products. docs/performance.md
// records the measurements behind both choices; `make bench` re-measures them
// (results/bench-gemm.md).
#pragma once

#include <cstdint>
#include <string>

#include "engine/gemm/precision.h"

namespace synth {

// Call first thing in main(), before any other work. If OpenBLAS bound a kernel without AVX2
// code on a CPU that has AVX2+FMA, or one without AVX-512 code on a CPU that has AVX-512, and
// the user did not set OPENBLAS_CORETYPE (if they did, blas_kernel_note says so),
// sets OPENBLAS_CORETYPE and re-executes /proc/self/exe with the same argv, silently (the
// runners' kernel line says so: blas_kernel_note); it does not return in that case. The marker
// SYNTH_BLAS_REEXEC=<the kernel OpenBLAS detected> prevents a second re-exec: if the kernel is
// still wrong afterwards it warns and carries on.
void blas_select_kernel(int argc, char** argv);

// The kernel to ask OpenBLAS for instead of `corename`, or "" if `corename` is fine or there
// is nothing better for this CPU. Pure function of its arguments (blas_select_kernel feeds it
// the live values), so the policy can be tested on any machine.
std::string blas_better_kernel(const std::string& corename, bool cpu_avx512f, bool cpu_avx2_fma);

// The kernel OpenBLAS bound at load time ("Haswell", "Zen", "Prescott", ...).
std::string blas_kernel_name();
// For the kernel line: " (chosen by synth: OpenBLAS detected ... on this CPU)" after
// blas_select_kernel re-ran the program; " (from OPENBLAS_CORETYPE=...; ... uses more of this
// CPU: ...)" when the user's OPENBLAS_CORETYPE holds back a kernel it would replace; else "".
std::string blas_kernel_note();
// OpenBLAS's build configuration string (version, DYNAMIC_ARCH, USE_OPENMP, MAX_THREADS).
std::string blas_config();
// The CPU as /proc/cpuinfo names it, "AMD EPYC (family 26, model 2)": the kernel alone does
// not tell machines apart (OpenBLAS binds "Haswell" on more than one), and speed is only
// comparable between runs on the same CPU. "unknown" where there is no /proc/cpuinfo.
std::string cpu_name();

// Gives n threads to both OpenMP and OpenBLAS (see THREAD OWNERSHIP above) and turns off
// OpenMP dynamic team sizes, which can hang OpenBLAS. n >= 1.
void set_threads(int n);
// SLURM_CPUS_PER_TASK, else OMP_NUM_THREADS, else the cores this process may use; when those are
// all the machine's and mpirun says several ranks share it (OMPI_COMM_WORLD_LOCAL_SIZE, MPICH's
// MPI_LOCALNRANKS), each rank's share of them (docs/distributed.md: --bind-to none). A variable
// that is set but not a whole number in [1, 256] ("4x", "0", "1e3") is ignored with a warning
// (threads_from_env), as the next source is used.
int default_threads();
// The thread count environment variable `var` gives (`value`, may be null), or 0 after a
// warning naming it when it is set but not a whole number in [1, 256].
int threads_from_env(const char* var, const char* value);

// Row-major C = alpha * op(A) * op(B) + beta * C, where op(X) is X or X^T.
//   op(A): M x K, op(B): K x N, C: M x N. lda, ldb, ldc are row strides (elements) of A, B, C
//   as stored: A is M x K (lda >= K) or, if transA, K x M (lda >= M); likewise B.
// With beta == 0, C is not read (it may hold NaN). Throws synth::Error on bad sizes/strides.
// Under a bf16 provider A and B are rounded to bf16 first (into buffers of the calling thread's).
void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

// Where matrix (i, j) of a batch starts: at X + i * batch + j * head (elements). A stride of 0
// shares one matrix over that index; C's must not be 0 where the batch (heads) count exceeds 1.
struct BatchStride {
    int64_t batch, head;
};

// C(i, j) = alpha * op(A(i, j)) * op(B(i, j)) + beta * C(i, j) for i < batch, j < heads, each
// matrix as sgemm takes it. The attention products are such batches (one small product per
// (batch, head)): on onednn-bf16 the whole batch is one call on the matrix units, elsewhere one
// sgemm per matrix, in parallel over the batch (see THREAD OWNERSHIP).
void sgemm_batched(int batch, int heads, bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                   BatchStride sa, int lda, const float* B, BatchStride sb, int ldb, float beta, float* C,
                   BatchStride sc, int ldc);
// Whether sgemm_batched runs a batch as one call. If so a caller gains nothing by splitting
// the products into smaller ones (causal blocks): fewer, larger calls are faster.
bool gemm_batches_in_one_call();

// While one lives on a thread, sgemm and sgemm_batched on that thread convert each stored
// operand (the same pointer, rows, columns and stride) to bf16 once and reuse the copy: for
// products that share an operand, such as a linear layer's backward, whose dy feeds both dx
// and dW. The operands must not change while it lives. Only onednn-bf16 converts to bf16
// copies; under the other providers it does nothing.
class GemmOperandReuse {
public:
    GemmOperandReuse();
    ~GemmOperandReuse();
    GemmOperandReuse(const GemmOperandReuse&) = delete;
    GemmOperandReuse& operator=(const GemmOperandReuse&) = delete;
};

// BF16 COMPANIONS. In an inference pass under onednn-bf16, an op whose output feeds matrix
// products (a layernorm, the feed-forward ReLU, the attention softmax) can write the output's
// bf16 bits in the same pass that writes its fp32 values, and offer them here; while a
// Bf16Companions scope lives on the thread, sgemm and sgemm_batched read a contiguous operand
// that lies inside an offered output from those bits instead of converting it again. The bits
// are the ones the conversion would make (bf16_bits), so no number changes: the pass only skips
// a read of the fp32 values per product (V's attention input feeds three). The scope must end
// before the memory of an offered output is reused (models/ opens one per block).
class Bf16Companions {
public:
    Bf16Companions();
    ~Bf16Companions();
    Bf16Companions(const Bf16Companions&) = delete;
    Bf16Companions& operator=(const Bf16Companions&) = delete;
};
// Whether an op should write companions: onednn-bf16 runs the products and a Bf16Companions
// scope lives on this thread.
bool bf16_companions_wanted();
// Registers `bits`, the bf16 bits of src[0, n), until the scope ends; neither may change
// meanwhile (the op may write them after the call, before any product reads src).
void offer_bf16_companion(const float* src, int64_t n, const uint16_t* bits);
// The offered bits of src[0, n) (inside one offered output), or nullptr.
const uint16_t* bf16_companion(const float* src, int64_t n);

// A feed-forward layer's two products in inference under onednn-bf16, each with its epilogue on
// the matrix units: H (M, N) = relu(A W + bias) as bf16 bits, A (M, K) fp32 (its offered
// companion if any), W (K, N), bias (N) or nullptr; and C (M, N) fp32 = H W + bias + R, H (M, K)
// bf16 bits, R (M, N) a residual or nullptr. All row-major and contiguous. The hidden activation
// between them is never written in fp32 nor converted, and the residual add is no pass of its
// own. Other providers throw.
void sgemm_bias_relu_to_bf16(int M, int N, int K, const float* A, const float* W, const float* bias, uint16_t* H);
void sgemm_bf16_bias(int M, int N, int K, const uint16_t* H, const float* W, const float* bias, const float* R,
                     float* C);

// Same contract as sgemm, as a plain triple loop accumulating in double: the test reference.
void sgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace synth
