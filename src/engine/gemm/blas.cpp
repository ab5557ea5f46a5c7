#include "engine/gemm/blas.h"

#include <cblas.h>
#include <sched.h>
#include <omp.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "engine/gemm/bf16.h"
#include "base/error.h"
#include "engine/gemm/onednn.h"

namespace synth {

// OpenBLAS kernels with AVX-512 sgemm code, and those with AVX2+FMA only. Every other x86
// corename ("Prescott", "Core2", "Nehalem", "Sandybridge", "Opteron", "Barcelona", "Piledriver",
// "Excavator", ...) runs SSE or AVX-without-FMA kernels.
static const char* const kAvx512Kernels[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
static const char* const kAvx2Kernels[] = {"Haswell", "Zen"};

// On an AVX2 CPU "Haswell" rather than "Zen" (both 8-wide FMA kernels, different blocking),
// even on AMD: it ran the attention-sized products faster on a Zen 3 VM and the large shapes
// as fast (docs/performance.md, "Which AVX2 kernel").
static const char* const kAvx2Kernel = "Haswell";
// On an AVX-512 CPU "SkylakeX", also in place of an AVX2 kernel (which an OpenBLAS older than
// the CPU, or a CPUID mask, can bind): on an AMD EPYC of family 26, SkylakeX trained 1.6x as
// fast as "Haswell" (docs/performance.md, "An AVX2 kernel on an AVX-512 CPU").
static const char* const kAvx512Kernel = "SkylakeX";

static const char* const kReexecMarker = "SYNTH_BLAS_REEXEC";

static bool is_one_of(const std::string& corename, const char* const* names, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (strcasecmp(corename.c_str(), names[i]) == 0) return true;
    return false;
}

std::string blas_better_kernel(const std::string& corename, bool cpu_avx512f, bool cpu_avx2_fma) {
    if (is_one_of(corename, kAvx512Kernels, std::size(kAvx512Kernels))) return "";
    if (cpu_avx512f) return kAvx512Kernel;
    if (is_one_of(corename, kAvx2Kernels, std::size(kAvx2Kernels))) return "";
    if (cpu_avx2_fma) return kAvx2Kernel;
    return "";
}

std::string blas_kernel_name() { return openblas_get_corename(); }
std::string blas_config() { return openblas_get_config(); }

std::string cpu_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, model, family, number;
    const auto value = [&line] {
        const size_t colon = line.find(':');
        const size_t start = line.find_first_not_of(" \t", colon + 1);
        if (colon == std::string::npos || start == std::string::npos) return std::string();
        return line.substr(start, line.find_last_not_of(" \t") + 1 - start);
    };
    // The first processor's block is enough: a VM's vCPUs are one model.
    while (std::getline(in, line) && !line.empty()) {
        if (line.rfind("model name", 0) == 0) model = value();
        else if (line.rfind("cpu family", 0) == 0) family = value();
        else if (line.rfind("model", 0) == 0 && line.find_first_of(" \t:") == 5) number = value();
    }
    if (model.empty()) return "unknown";
    if (!family.empty() && !number.empty()) model += " (family " + family + ", model " + number + ")";
    return model;
}

// blas_better_kernel for this CPU and the kernel OpenBLAS bound.
static std::string better_kernel_here() {
    __builtin_cpu_init();
    const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return blas_better_kernel(blas_kernel_name(), __builtin_cpu_supports("avx512f"), avx2_fma);
}

std::string blas_kernel_note() {
    const char* requested = std::getenv("OPENBLAS_CORETYPE");
    const char* detected = std::getenv(kReexecMarker);  // what OpenBLAS bound before synth re-ran
    if (requested && detected && *detected)
        return " (chosen by synth: OpenBLAS detected " + std::string(detected) + " on this CPU)";
    if (!requested || detected) return "";
    const std::string better = better_kernel_here();
    return better.empty() ? "" : " (from OPENBLAS_CORETYPE=" + std::string(requested) + "; " + better +
                                     " uses more of this CPU: unset it to run that)";
}

void blas_select_kernel(int argc, char** argv) {
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const std::string current = blas_kernel_name();
    const std::string better = better_kernel_here();
    if (better.empty()) return;
    const char* simd = avx512 ? "AVX-512" : "AVX2";  // what the CPU has that `current` does not use

    const char* requested = std::getenv("OPENBLAS_CORETYPE");
    if (std::getenv(kReexecMarker)) {
        std::fprintf(stderr,
                     "synth: warning: OpenBLAS still runs '%s' on an %s CPU after re-running with "
                     "OPENBLAS_CORETYPE=%s; matrix products will be slow\n",
                     current.c_str(), simd, requested ? requested : "(unset)");
        return;
    }
    // A user who chose a kernel keeps it, even a slow one (e.g. to compare kernels); the runners'
    // kernel line says what it leaves unused (blas_kernel_note).
    if (requested) return;

    // Silent: the kernel line of the run (blas_kernel_note) says that synth chose the kernel.
    ::setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
    ::setenv(kReexecMarker, current.c_str(), 1);
    std::vector<char*> args(argv, argv + argc);
    args.push_back(nullptr);
    ::execv("/proc/self/exe", args.data());
    // Only reached if execv failed (e.g. no /proc): the slow kernel still computes right answers.
    std::fprintf(stderr, "synth: warning: cannot re-execute /proc/self/exe (%s); continuing with '%s'\n",
                 std::strerror(errno), current.c_str());
}

void set_threads(int n) {
    SYNTH_CHECK(n >= 1, "thread count must be >= 1, got ", n);
    // OpenBLAS's threaded GEMM assumes it gets every thread it asks OpenMP for; with dynamic
    // teams (OMP_DYNAMIC=true) on a loaded machine it got fewer and spun forever (0.3.21).
    omp_set_dynamic(0);
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

// Shared argument check: BLAS itself would print "parameter N was invalid" and carry on.
static void check_gemm_args(const char* who, bool transA, bool transB, int M, int N, int K,
                            const float* A, int lda, const float* B, int ldb, const float* C,
                            int ldc) {
    SYNTH_CHECK(M >= 0 && N >= 0 && K >= 0, who, ": negative size M=", M, " N=", N, " K=", K);
    const int a_cols = transA ? M : K;  // A is stored M x K, or K x M if transposed
    const int b_cols = transB ? K : N;  // B is stored K x N, or N x K if transposed
    SYNTH_CHECK(lda >= (a_cols > 1 ? a_cols : 1), who, ": lda=", lda, " < ", a_cols, " columns of A");
    SYNTH_CHECK(ldb >= (b_cols > 1 ? b_cols : 1), who, ": ldb=", ldb, " < ", b_cols, " columns of B");
    SYNTH_CHECK(ldc >= (N > 1 ? N : 1), who, ": ldc=", ldc, " < ", N, " columns of C");
    const bool empty_product = M == 0 || N == 0 || K == 0;
    SYNTH_CHECK(empty_product || (A && B), who, ": null A or B for a ", M, "x", N, "x", K, " product");
    SYNTH_CHECK(M == 0 || N == 0 || C, who, ": null C for a ", M, "x", N, " result");
}

// Products with M*N*K at or below this run on the calling thread alone. It is OpenBLAS's own
// cut-off (interface/gemm.c: SMP_THRESHOLD_MIN 65536 x GEMM_MULTITHREAD_THRESHOLD 4), so
// whatever the size, OpenBLAS itself never starts threads from synth::sgemm.
static constexpr double kSplitMinMNK = 65536.0 * 4;

static void cblas_block(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                        int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}


// A thread's buffer for operand copies, grown by mmap and never through malloc: an outgrown
// buffer that glibc had mmapped raises its dynamic mmap threshold when freed, after which freed
// memory stays in the process (the benchmark LM's V peaked at 891 MB in bf16 with std::vector
// buffers, 703 MB with a fixed threshold; fp32: 666).
template <typename T>
class PageBuffer {
public:
    T* get(size_t n) {
        if (n > cap_) {
            release();
            void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            SYNTH_CHECK(p != MAP_FAILED, "out of memory for a ", n * sizeof(T), "-byte GEMM operand copy");
            p_ = static_cast<T*>(p), cap_ = n;
        }
        return p_;
    }
    ~PageBuffer() { release(); }

private:
    void release() {
        if (p_) munmap(p_, cap_ * sizeof(T));
        p_ = nullptr, cap_ = 0;
    }
    T* p_ = nullptr;
    size_t cap_ = 0;
};

// A stored rows x cols (row stride ld) as `convert` makes each element, packed (row stride
// cols) into `out`, in parallel unless already inside a parallel region or small.
template <typename T, typename F>
static const T* packed(const float* A, int rows, int cols, int ld, PageBuffer<T>& out, F convert) {
    T* o = out.get((size_t)rows * cols);
    const int64_t n = (int64_t)rows * cols;
    const bool parallel = !omp_in_parallel() && n > 100000;
    if (ld == cols) {  // one contiguous run, split evenly however few the rows
#pragma omp parallel for if (parallel)
        for (int64_t i = 0; i < n; ++i) o[i] = convert(A[i]);
        return o;
    }
#pragma omp parallel for if (parallel)
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) o[(size_t)r * cols + c] = convert(A[(size_t)r * ld + c]);
    return o;
}

// The bf16 copies a GemmOperandReuse keeps on this thread: `used` of `held` are live, the rest
// keep their pages for the next scope.
struct Bf16Copy {
    const float* src;
    int rows, cols, ld;
    const uint16_t* bits;
    PageBuffer<uint16_t> buffer;
};
struct ReuseScope {
    int depth = 0;
    size_t used = 0;
    std::vector<std::unique_ptr<Bf16Copy>> held;
};
static thread_local ReuseScope t_reuse;

GemmOperandReuse::GemmOperandReuse() { ++t_reuse.depth; }
GemmOperandReuse::~GemmOperandReuse() {
    if (--t_reuse.depth == 0) t_reuse.used = 0;
}

// The outputs offered as bf16 companions on this thread while a Bf16Companions scope lives.
struct Companion {
    const float* src;
    int64_t n;
    const uint16_t* bits;
};
struct CompanionScope {
    int depth = 0;
    std::vector<Companion> offered;
};
static thread_local CompanionScope t_companions;

Bf16Companions::Bf16Companions() { ++t_companions.depth; }
Bf16Companions::~Bf16Companions() {
    if (--t_companions.depth == 0) t_companions.offered.clear();  // keeps its capacity: no allocation per block
}

bool bf16_companions_wanted() { return t_companions.depth > 0 && gemm_provider() == GemmProvider::Bf16Onednn; }

void offer_bf16_companion(const float* src, int64_t n, const uint16_t* bits) {
    SYNTH_CHECK(t_companions.depth > 0, "offer_bf16_companion: no Bf16Companions scope on this thread");
    t_companions.offered.push_back({src, n, bits});
}

const uint16_t* bf16_companion(const float* src, int64_t n) {
    for (const Companion& c : t_companions.offered)
        if (src >= c.src && src + n <= c.src + c.n) return c.bits + (src - c.src);
    return nullptr;
}

// A stored rows x cols operand (row stride ld) as packed bf16 bits: an offered companion,
// converted into `buffer`, or converted once per GemmOperandReuse scope.
static const uint16_t* bf16_operand(const float* X, int rows, int cols, int ld, PageBuffer<uint16_t>& buffer) {
    if (!t_companions.offered.empty() && (ld == cols || rows == 1))
        if (const uint16_t* c = bf16_companion(X, (int64_t)rows * cols)) return c;
    auto bits = [](float x) { return bf16_bits(x); };
    if (t_reuse.depth == 0) return packed(X, rows, cols, ld, buffer, bits);
    for (size_t i = 0; i < t_reuse.used; ++i) {
        const Bf16Copy& c = *t_reuse.held[i];
        if (c.src == X && c.rows == rows && c.cols == cols && c.ld == ld) return c.bits;
    }
    if (t_reuse.used == t_reuse.held.size()) t_reuse.held.push_back(std::make_unique<Bf16Copy>());
    Bf16Copy& c = *t_reuse.held[t_reuse.used];
    c.bits = packed(X, rows, cols, ld, c.buffer, bits);
    c.src = X, c.rows = rows, c.cols = cols, c.ld = ld;
    ++t_reuse.used;  // only once the copy exists
    return c.bits;
}

// fp32 on OpenBLAS, split over the threads (see THREAD OWNERSHIP in blas.h).
static void sgemm_openblas(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
                           const float* B, int ldb, float beta, float* C, int ldc) {
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads == 1 || (double)M * N * K <= kSplitMinMNK) {
        cblas_block(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    // Split C into one block of rows per thread (of columns, if C is wider than tall), in
    // multiples of 16 so blocks hold whole microkernel tiles. The block size comes from the
    // team actually granted, which may be smaller than asked for (OMP_DYNAMIC, thread limits).
    const bool by_rows = M >= N;
    const int extent = by_rows ? M : N;
#pragma omp parallel num_threads(threads)
    {
        // Each OpenBLAS call below must be single-threaded. It is anyway inside an active
        // region, but a team of one is not active; this setting lasts for this task only.
        omp_set_num_threads(1);
        const int team = omp_get_num_threads();
        const int chunk = ((extent + team - 1) / team + 15) / 16 * 16;
        const int lo = omp_get_thread_num() * chunk;
        const int hi = lo + chunk < extent ? lo + chunk : extent;
        if (lo < hi) {
            if (by_rows)  // rows lo..hi of C come from rows lo..hi of op(A)
                cblas_block(transA, transB, hi - lo, N, K, alpha, A + (transA ? lo : (size_t)lo * lda), lda,
                            B, ldb, beta, C + (size_t)lo * ldc, ldc);
            else  // columns lo..hi of C come from columns lo..hi of op(B)
                cblas_block(transA, transB, M, hi - lo, K, alpha, A, lda,
                            B + (transB ? (size_t)lo * ldb : lo), ldb, beta, C + lo, ldc);
        }
    }
}

void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
    check_gemm_args("sgemm", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
    if (M == 0 || N == 0) return;
    const int a_rows = transA ? K : M, a_cols = transA ? M : K, b_rows = transB ? N : K, b_cols = transB ? K : N;
    if (gemm_provider() == GemmProvider::OpenBlas || K == 0) {
        sgemm_openblas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    } else if (gemm_provider() == GemmProvider::Bf16Rounded) {
        // bf16's numbers on the fp32 GEMM (bf16.h): round both operands, then multiply as usual.
        thread_local PageBuffer<float> ra, rb;
        auto round = [](float x) { return bf16_round(x); };
        const float* Ar = packed(A, a_rows, a_cols, lda, ra, round);
        const float* Br = packed(B, b_rows, b_cols, ldb, rb, round);
        sgemm_openblas(transA, transB, M, N, K, alpha, Ar, a_cols, Br, b_cols, beta, C, ldc);
    } else {
        thread_local PageBuffer<uint16_t> ba, bb;
        const uint16_t* Ab = bf16_operand(A, a_rows, a_cols, lda, ba);
        const uint16_t* Bb = bf16_operand(B, b_rows, b_cols, ldb, bb);
        onednn_gemm(OnednnType::BF16, transA, transB, M, N, K, alpha, Ab, a_cols, Bb, b_cols, beta, C, ldc);
    }
}

static void check_onednn_bf16(const char* who) {
    SYNTH_CHECK(gemm_provider() == GemmProvider::Bf16Onednn, who, " runs on onednn-bf16 only, not ",
                provider_name(gemm_provider()));
}

void sgemm_bias_relu_to_bf16(int M, int N, int K, const float* A, const float* W, const float* bias, uint16_t* H) {
    check_onednn_bf16("sgemm_bias_relu_to_bf16");
    check_gemm_args("sgemm_bias_relu_to_bf16", false, false, M, N, K, A, K, W, N, reinterpret_cast<float*>(H), N);
    thread_local PageBuffer<uint16_t> ba, bw;
    const uint16_t* Ab = bf16_operand(A, M, K, K, ba);
    const uint16_t* Wb = bf16_operand(W, K, N, N, bw);
    onednn_gemm_epilogue(false, false, M, N, K, Ab, K, Wb, N, bias, /*relu=*/true, nullptr, H, /*c_bf16=*/true, N);
}

void sgemm_bf16_bias(int M, int N, int K, const uint16_t* H, const float* W, const float* bias, const float* R,
                     float* C) {
    check_onednn_bf16("sgemm_bf16_bias");
    check_gemm_args("sgemm_bf16_bias", false, false, M, N, K, reinterpret_cast<const float*>(H), K, W, N, C, N);
    thread_local PageBuffer<uint16_t> bw;
    const uint16_t* Wb = bf16_operand(W, K, N, N, bw);
    onednn_gemm_epilogue(false, false, M, N, K, H, K, Wb, N, bias, /*relu=*/false, R, C, /*c_bf16=*/false, N);
}

// The elements from the first to the last one a batch of matrices covers, in bf16, at the
// same offsets: whatever the strides (heads read in place from (B, T, H*D), shared matrices),
// one conversion pass over the span, in parallel (and once per GemmOperandReuse scope).
static const uint16_t* bf16_span(const float* X, int batch, int heads, BatchStride s, int rows, int cols, int ld,
                                 PageBuffer<uint16_t>& out) {
    const int64_t n = (batch - 1) * s.batch + (heads - 1) * s.head + (int64_t)(rows - 1) * ld + cols;
    SYNTH_CHECK(n <= INT32_MAX, "sgemm_batched: a bf16 operand of ", n, " elements is too large");
    return bf16_operand(X, 1, (int)n, (int)n, out);
}

bool gemm_batches_in_one_call() { return gemm_provider() == GemmProvider::Bf16Onednn; }

void sgemm_batched(int batch, int heads, bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                   BatchStride sa, int lda, const float* B, BatchStride sb, int ldb, float beta, float* C,
                   BatchStride sc, int ldc) {
    check_gemm_args("sgemm_batched", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
    SYNTH_CHECK(batch >= 0 && heads >= 0, "sgemm_batched: negative batch ", batch, " or heads ", heads);
    SYNTH_CHECK((batch <= 1 || sc.batch != 0) && (heads <= 1 || sc.head != 0),
                "sgemm_batched: every matrix of C needs its own place (stride 0 for C)");
    if (M == 0 || N == 0 || batch == 0 || heads == 0) return;
    // oneDNN broadcasts a shared matrix against a distinct one, not two shared ones against a
    // distinct C: such a batch (no caller has one) takes the loop below.
    const bool both_shared = (batch > 1 && sa.batch == 0 && sb.batch == 0) || (heads > 1 && sa.head == 0 && sb.head == 0);
    if (gemm_batches_in_one_call() && K > 0 && !both_shared) {
        thread_local PageBuffer<uint16_t> ba, bb;
        const int a_rows = transA ? K : M, a_cols = transA ? M : K, b_rows = transB ? N : K, b_cols = transB ? K : N;
        const uint16_t* Ab = bf16_span(A, batch, heads, sa, a_rows, a_cols, lda, ba);
        const uint16_t* Bb = bf16_span(B, batch, heads, sb, b_rows, b_cols, ldb, bb);
        onednn_gemm_batched(OnednnType::BF16, batch, heads, transA, transB, M, N, K, alpha, Ab, {sa.batch, sa.head},
                            lda, Bb, {sb.batch, sb.head}, ldb, beta, C, {sc.batch, sc.head}, ldc);
        return;
    }
#pragma omp parallel for collapse(2)
    for (int i = 0; i < batch; ++i)
        for (int j = 0; j < heads; ++j)
            sgemm(transA, transB, M, N, K, alpha, A + i * sa.batch + j * sa.head, lda, B + i * sb.batch + j * sb.head,
                  ldb, beta, C + i * sc.batch + j * sc.head, ldc);
}

void sgemm_naive(bool transA, bool transB, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    check_gemm_args("sgemm_naive", transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                const float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)a * b;
            }
            float& c = C[(size_t)i * ldc + j];
            // beta == 0 means "overwrite": C may be uninitialised, so it is not read (BLAS rule).
            c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * c));
        }
    }
}

int threads_from_env(const char* var, const char* value) {
    if (!value || !*value) return 0;
    // As strictly as a flag: digits only (OMP_NUM_THREADS may be a list, "4,2": its first
    // entry), a whole number in [1, 256]. Anything else is said once and ignored.
    std::string s = value;
    if (std::string(var) == "OMP_NUM_THREADS") s = s.substr(0, s.find(','));
    const bool digits = !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
    const int n = digits ? std::atoi(s.c_str()) : 0;
    if (n >= 1 && n <= 256) return n;
    std::fprintf(stderr, "warning: %s='%s' is not a thread count (a whole number in [1, 256]); ignored\n", var, value);
    return 0;
}

int default_threads() {
    for (const char* var : {"SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"})
        if (const int n = threads_from_env(var, std::getenv(var))) return n;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    // An unbound rank sees every core, as do the other ranks on its node: share them.
    if (n == (int)sysconf(_SC_NPROCESSORS_ONLN))
        for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
            if (const char* v = std::getenv(var)) {
                const int local = std::atoi(v);
                if (local > 1) n /= local;
                break;
            }
    return std::max(1, std::min(256, n));
}

}  // namespace synth
