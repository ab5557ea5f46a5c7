// blas.h: the one door to OpenBLAS. Kernel selection, thread ownership, and a row-major sgemm.
//
// The rest of synth never includes <cblas.h>: every matrix product goes through synth::sgemm,
// so the BLAS can be swapped, checked (sgemm_naive) and benchmarked (build/bench) in one place.
//
// KERNEL SELECTION. Debian's OpenBLAS is a DYNAMIC_ARCH build: at library load time a
// constructor reads CPUID (or the environment variable OPENBLAS_CORETYPE) and binds one set of
// kernels for the life of the process. Inside some VMs it picks a pre-AVX kernel ("Prescott")
// on AVX2 machines, which makes sgemm about 5x slower (22 vs 117 GFLOP/s on 4096x256x256, 2
// threads, Zen3). Since the choice is frozen at load time, setenv() from main() is too late
// (tests/test_blas.cpp checks this); blas_select_kernel therefore sets OPENBLAS_CORETYPE and
// re-executes the program, once.
//
// THREAD OWNERSHIP. The machine has few cores and two pools could fight over them: OpenMP
// (our kernels) and OpenBLAS's own threads. The OpenMP build of OpenBLAS shares the OpenMP
// runtime, and it runs single-threaded whenever it is called inside an active parallel region.
// Each kind of work has exactly one owner of the n threads (set by set_threads(n)):
//   - Large GEMMs (projections and FFN, e.g. 4096x256x256 = (B*T) x d x d) are called from
//     outside any parallel region; OpenBLAS splits them over all n threads.
//   - Small batched per-head GEMMs (attention, 128x128x64 and 128x64x128 per (batch, head))
//     run inside `#pragma omp parallel for` over the batch*heads index, and each sgemm call is
//     single-threaded (OpenBLAS sees omp_in_parallel()).
//   - Element and row kernels (layernorm, softmax, GELU, AdamW) use `#pragma omp parallel for`.
// Never let a multithreaded sgemm run inside a parallel region with nested parallelism on.
// Measured with build/bench on 2 vCPUs (AMD EPYC Zen3, KVM, OpenBLAS 0.3.21 'Haswell' kernel):
//   sgemm 4096x256x256, 1 thread outside a parallel region .......... 61 GFLOP/s
//   the same, 2 threads outside a parallel region ................... 117 GFLOP/s
//   the same, called by one thread inside a 2-thread parallel region .. 61 GFLOP/s (=1 thread)
//   128 GEMMs (32 batches x 4 heads), per-head layout:
//                             (a) loop, 2-thread sgemm   (b) omp for, 1-thread sgemm
//     128x128x64, A B^T             43 GFLOP/s                  101 GFLOP/s
//     128x64x128, A B               40 GFLOP/s                   96 GFLOP/s
// so (b) wins by 2.4x: a 1-MFLOP GEMM is too small to split between two threads.
#pragma once

#include <string>

namespace synth {

// Call first thing in main(), before any other work. If OpenBLAS bound a kernel without AVX2
// code on a CPU that has AVX2+FMA (or AVX-512), and the user did not set OPENBLAS_CORETYPE,
// prints one line to stderr, sets OPENBLAS_CORETYPE and re-executes /proc/self/exe with the
// same argv; it does not return in that case. The marker SYNTH_BLAS_REEXEC=1 prevents a
// second re-exec: if the kernel is still wrong afterwards it warns and carries on.
void blas_select_kernel(int argc, char** argv);

// The kernel to ask OpenBLAS for instead of `corename`, or "" if `corename` is fine or there
// is nothing better for this CPU. Pure function of its arguments (blas_select_kernel feeds it
// the live values), so the policy can be tested on any machine.
std::string blas_better_kernel(const std::string& corename, bool cpu_avx512f, bool cpu_avx2_fma);

// The kernel OpenBLAS bound at load time ("Haswell", "Zen", "Prescott", ...).
std::string blas_kernel_name();
// OpenBLAS's build configuration string (version, DYNAMIC_ARCH, USE_OPENMP, MAX_THREADS).
std::string blas_config();

// Gives n threads to both OpenMP and OpenBLAS (see THREAD OWNERSHIP above). n >= 1.
void set_threads(int n);

// Row-major C = alpha * op(A) * op(B) + beta * C, where op(X) is X or X^T.
//   op(A): M x K, op(B): K x N, C: M x N. lda, ldb, ldc are row strides (elements) of A, B, C
//   as stored: A is M x K (lda >= K) or, if transA, K x M (lda >= M); likewise B.
// With beta == 0, C is not read (it may hold NaN). Throws synth::Error on bad sizes/strides.
void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);

// Same contract as sgemm, as a plain triple loop accumulating in double: the test reference.
void sgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace synth
