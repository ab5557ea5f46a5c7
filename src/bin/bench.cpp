// bench: GEMM throughput on the LM benchmark's shapes, and the thread-ownership measurements
// behind the policy in src/engine/gemm/blas.h.
//
//   build/bench [--threads=2] [--reps=20]
//
// Prints the OpenBLAS kernel and config, the measured FMA peak and the GEMM provider
// --precision=bf16 gets (docs/precision.md), then markdown tables of GFLOP/s
// (best and median over --reps timed calls, after one warm-up call each), then every row again
// as one JSON object per line for scripts.
//
// The machine is shared, so candidates that are compared with each other are timed
// interleaved (A, B, A, B, ...): a burst of load from another process then hits all of them
// alike instead of whichever happened to run during the burst.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/gemm/blas.h"
#include "runs/cli.h"
#include "base/error.h"
#include "engine/ops.h"
#include "base/flags.h"
#include "engine/gemm/onednn.h"
#include "engine/gemm/precision.h"

namespace {

// 64-byte aligned float buffer (one cache line), filled with uniform noise in [-1, 1].
struct AlignedFree {
    void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;

Buffer random_buffer(size_t n, unsigned seed) {
    const size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    SYNTH_CHECK(p, "cannot allocate ", bytes, " bytes");
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) p[i] = u(rng);
    return Buffer(p);
}

struct Timing {
    double best_gflops, median_gflops;
};

// Times each candidate `reps` times, interleaved, after one warm-up call each. Every
// candidate performs `flops` floating-point operations per call.
std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& candidates, double flops,
                                     int reps) {
    for (const auto& fn : candidates) fn();
    std::vector<std::vector<double>> secs(candidates.size());
    for (int r = 0; r < reps; r++) {
        for (size_t c = 0; c < candidates.size(); c++) {
            const auto t0 = std::chrono::steady_clock::now();
            candidates[c]();
            secs[c].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
    }
    std::vector<Timing> out;
    for (std::vector<double>& s : secs) {
        std::sort(s.begin(), s.end());
        out.push_back({flops / s.front() / 1e9, flops / s[s.size() / 2] / 1e9});
    }
    return out;
}

// The floating-point peak of this machine, measured rather than computed from a data sheet:
// every thread runs 12 independent chains of fused multiply-adds on the widest vectors the
// build targets (-march=native), with no memory traffic, so nothing but the FMA units limits
// it. Nominal figures mislead twice on cloud CPUs: the clock in /proc/cpuinfo is the base
// clock, not the one the core runs at, and Zen 4 executes one 512-bit FMA as two 256-bit
// halves, so AVX-512 does not double its throughput over AVX2. This is the ceiling no GEMM
// can beat; OpenBLAS's best sgemm reaches a fraction of it.
#if defined(__AVX512F__)
using Vec = __m512;
inline Vec vset(float x) { return _mm512_set1_ps(x); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
#elif defined(__FMA__)
using Vec = __m256;
inline Vec vset(float x) { return _mm256_set1_ps(x); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
#else
using Vec = float;
inline Vec vset(float x) { return x; }
inline Vec vfma(Vec a, Vec b, Vec c) { return a * b + c; }
#endif
constexpr int kLanes = sizeof(Vec) / sizeof(float);
inline float vsum(Vec a) {
    float t[kLanes];
    std::memcpy(t, &a, sizeof a);
    float s = 0.0f;
    for (float x : t) s += x;
    return s;
}

constexpr int kChains = 12;  // > FMA latency x pipes (4 x 2 on Zen, Skylake), so no chain stalls

// One thread's share: kChains independent FMA chains, `iters` steps each. Not inlined, so the
// chains live in registers whatever the caller (an OpenMP region) looks like.
__attribute__((noinline)) float fma_chains(long iters, float seed) {
    Vec acc[kChains];
    const Vec b = vset(0.999999f), c = vset(1e-7f);
    for (int i = 0; i < kChains; i++) acc[i] = vset(seed + (float)i);
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < kChains; i++) acc[i] = vfma(acc[i], b, c);
    float s = 0.0f;
    for (int i = 0; i < kChains; i++) s += vsum(acc[i]);
    return s;
}

constexpr int kPeakRounds = 5;  // timed rounds per FMA-peak figure

// GFLOP/s of `threads` threads running FMAs at once; best of `reps` timed rounds of ~0.2 s.
double fma_peak_gflops(int threads, int reps) {
    constexpr long kIters = 100000000;
    double best = 0.0;
    for (int r = 0; r <= reps; r++) {  // round 0 warms the cores up and is not counted
        float sink = 0.0f;
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fma_chains(kIters, (float)omp_get_thread_num());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        SYNTH_CHECK(sink == sink, "FMA peak: the chains produced NaN");
        if (r > 0) best = std::max(best, 2.0 * kLanes * kChains * kIters * threads / s / 1e9);
    }
    return best;
}

std::string shape_text(bool ta, bool tb, int M, int N, int K) {
    return std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " + (ta ? "T" : "N") +
           (tb ? "T" : "N");
}

// Markdown table rows as measurements happen, and the same rows as JSON lines printed
// together at the end, so the tables stay unbroken.
class Report {
public:
    explicit Report(int threads) : threads_(threads), kernel_(synth::blas_kernel_name()) {}

    void header(const char* title) const {
        std::printf("\n### %s\n\n| %-46s | %-20s | %7s | %7s |\n|%s|%s|%s|%s|\n", title, "what", "M x N x K",
                    "best", "median", std::string(48, '-').c_str(), std::string(22, '-').c_str(),
                    std::string(9, '-').c_str(), std::string(9, '-').c_str());
    }

    // `threads`: how many threads the measured code had (not always --threads).
    void row(const std::string& what, const std::string& shape, int threads, const Timing& t) {
        std::printf("| %-46s | %-20s | %7.1f | %7.1f |\n", what.c_str(), shape.c_str(), t.best_gflops,
                    t.median_gflops);
        char line[512];
        std::snprintf(line, sizeof line,
                      "{\"bench\":\"%s\",\"shape\":\"%s\",\"threads\":%d,\"kernel\":\"%s\","
                      "\"best_gflops\":%.2f,\"median_gflops\":%.2f}",
                      what.c_str(), shape.c_str(), threads, kernel_.c_str(), t.best_gflops, t.median_gflops);
        json_.push_back(line);
    }
    void row(const std::string& what, const std::string& shape, const Timing& t) { row(what, shape, threads_, t); }
    // A measurement that is not a GEMM (the FMA peak): JSON only.
    void json_line(const std::string& what, int threads, double gflops) {
        char line[256];
        std::snprintf(line, sizeof line, "{\"bench\":\"%s\",\"threads\":%d,\"best_gflops\":%.2f}", what.c_str(),
                      threads, gflops);
        json_.push_back(line);
    }

    void print_json() const {
        std::printf("\n### Machine-readable (one JSON object per line)\n\n```\n");
        for (const std::string& line : json_) std::printf("%s\n", line.c_str());
        std::printf("```\n");
    }

private:
    int threads_;
    std::string kernel_;
    std::vector<std::string> json_;
};

// One large product, three ways: raw cblas_sgemm called outside a parallel region (OpenBLAS
// splits it over its threads), synth::sgemm (our row/column split, one single-threaded
// OpenBLAS call per OpenMP thread), and, for the forward and dX shapes, the engine's linear op.
void bench_large(Report& report, bool ta, bool tb, int M, int N, int K, int reps) {
    Buffer A = random_buffer((size_t)M * K, 1), B = random_buffer((size_t)K * N, 2);
    Buffer C = random_buffer((size_t)M * N, 3);
    const int lda = ta ? M : K, ldb = tb ? K : N;
    // The engine's matmul op (ops.h linear: y = x W, or x W^T), output from the scratch arena.
    synth::Tensor x, w;
    x.data = A.get(), x.ndim = 2, x.dims = {M, K, 0, 0};
    w.data = B.get(), w.ndim = 2, w.dims = {tb ? N : K, tb ? K : N, 0, 0};
    std::vector<std::function<void()>> fns = {
        [&] {
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                        A.get(), lda, B.get(), ldb, 0.0f, C.get(), N);
        },
        [&] { synth::sgemm(ta, tb, M, N, K, 1.0f, A.get(), lda, B.get(), ldb, 0.0f, C.get(), N); }};
    if (!ta)
        fns.push_back([&] {
            synth::NoGrad ng;
            synth::scratch().reset();
            synth::linear(x, w, synth::Tensor{}, tb ? synth::Transpose::Yes : synth::Transpose::No);
        });
    const std::vector<Timing> t = time_interleaved(fns, 2.0 * M * N * K, reps);
    const std::string shape = shape_text(ta, tb, M, N, K);
    report.row("cblas_sgemm (OpenBLAS threads)", shape, t[0]);
    report.row("synth::sgemm (split over OpenMP threads)", shape, t[1]);
    if (!ta) report.row("engine matmul op (ops.h linear)", shape, t[2]);
}

// One product through each GEMM provider (precision.h) and oneDNN's fp32 matmul, interleaved:
// the measurements behind the provider policy, and the bf16 rate utilisation is judged by.
void bench_providers(Report& report, bool ta, bool tb, int M, int N, int K, int reps) {
    Buffer A = random_buffer((size_t)M * K, 1), B = random_buffer((size_t)K * N, 2);
    Buffer C = random_buffer((size_t)M * N, 3);
    const int lda = ta ? M : K, ldb = tb ? K : N;
    std::vector<synth::GemmProvider> providers = {synth::GemmProvider::OpenBlas, synth::GemmProvider::Bf16Rounded};
    if (synth::onednn_has_bf16()) providers.push_back(synth::GemmProvider::Bf16Onednn);
    std::vector<std::function<void()>> fns;
    for (synth::GemmProvider g : providers)
        fns.push_back([&, g] {
            synth::set_gemm_provider(g);
            synth::sgemm(ta, tb, M, N, K, 1.0f, A.get(), lda, B.get(), ldb, 0.0f, C.get(), N);
            synth::set_gemm_provider(synth::GemmProvider::OpenBlas);
        });
    const bool onednn = synth::onednn_built();  // under `make ONEDNN=0` onednn_gemm throws
    if (onednn)
        fns.push_back([&] {
            synth::onednn_gemm(synth::OnednnType::F32, ta, tb, M, N, K, 1.0f, A.get(), lda, B.get(), ldb, 0.0f, C.get(), N);
        });
    const std::vector<Timing> t = time_interleaved(fns, 2.0 * M * N * K, reps);
    const std::string shape = shape_text(ta, tb, M, N, K);
    for (size_t i = 0; i < providers.size(); ++i)
        report.row(std::string("synth::sgemm, ") + synth::provider_name(providers[i]), shape, t[i]);
    if (onednn) report.row("oneDNN matmul, fp32", shape, t.back());
}

// The attention products of the benchmark LM, batch 32 x 4 heads, through sgemm_batched on
// each provider, as the model calls them: Q K^T on heads read in place from (B, T, H*D), and
// P V written into them. onednn-bf16 makes each batch one call, the others loop over sgemm.
void bench_providers_batched(Report& report, int reps) {
    const int B = 32, H = 4, T = 128, D = 64;
    const int64_t plane = (int64_t)T * T, row = (int64_t)H * D;
    Buffer Q = random_buffer((size_t)B * T * row, 13), Kt = random_buffer((size_t)B * T * row, 14);
    Buffer P = random_buffer((size_t)B * H * plane, 15), S = random_buffer((size_t)B * H * plane, 16);
    Buffer O = random_buffer((size_t)B * T * row, 17);
    const synth::BatchStride heads{T * row, D}, maps{H * plane, plane};
    std::vector<synth::GemmProvider> providers = {synth::GemmProvider::OpenBlas, synth::GemmProvider::Bf16Rounded};
    if (synth::onednn_has_bf16()) providers.push_back(synth::GemmProvider::Bf16Onednn);
    for (const bool scores : {true, false}) {
        std::vector<std::function<void()>> fns;
        for (synth::GemmProvider g : providers)
            fns.push_back([&, g] {
                synth::set_gemm_provider(g);
                if (scores)
                    synth::sgemm_batched(B, H, false, true, T, T, D, 1.0f, Q.get(), heads, (int)row, Kt.get(), heads,
                                         (int)row, 0.0f, S.get(), maps, T);
                else
                    synth::sgemm_batched(B, H, false, false, T, D, T, 1.0f, P.get(), maps, T, Q.get(), heads, (int)row,
                                         0.0f, O.get(), heads, (int)row);
                synth::set_gemm_provider(synth::GemmProvider::OpenBlas);
            });
        const std::vector<Timing> t = time_interleaved(fns, 2.0 * B * H * T * T * D, reps);
        for (size_t i = 0; i < providers.size(); ++i)
            report.row(std::string("synth::sgemm_batched, ") + synth::provider_name(providers[i]),
                       scores ? "128 x 128x128x64 NT (Q K^T)" : "128 x 128x64x128 NN (P V)", t[i]);
    }
}

// Does OpenBLAS go single-threaded inside an active parallel region? One 4096x256x256
// cblas_sgemm with 1 thread, with n threads, and called by one thread of an n-thread
// parallel region while the others wait at the closing barrier.
void bench_inside_parallel(Report& report, int threads, int reps) {
    const int M = 4096, N = 256, K = 256;
    Buffer A = random_buffer((size_t)M * K, 4), B = random_buffer((size_t)K * N, 5);
    Buffer C = random_buffer((size_t)M * N, 6);
    auto gemm = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A.get(), K, B.get(), N, 0.0f,
                    C.get(), N);
    };
    const std::vector<Timing> t = time_interleaved(
        {[&] {
             synth::set_threads(1);
             gemm();
             synth::set_threads(threads);
         },
         gemm,
         [&] {
#pragma omp parallel
             {
#pragma omp master
                 gemm();
             }
         }},
        2.0 * M * N * K, reps);
    const std::string shape = shape_text(false, false, M, N, K);
    report.row("cblas_sgemm, 1 thread", shape, 1, t[0]);
    report.row("cblas_sgemm, n threads", shape, t[1]);
    report.row("cblas_sgemm by 1 thread of an n-thread region", shape, t[2]);
}

// The attention core's per-(batch, head) products: 32 batches x 4 heads, T = 128, head
// dimension 64, per-head contiguous layout (B, H, T, d):
//   scores = Q K^T: 128x128x64 (B transposed);  out = P V: 128x64x128.
// (a) a plain loop over the 128 products, each cblas_sgemm split by OpenBLAS over n threads;
// (b) `omp parallel for` over the 128 products, each synth::sgemm single-threaded;
// (c) a plain loop over the 128 products, each synth::sgemm split over the OpenMP threads.
void bench_batched(Report& report, int reps) {
    const int BH = 32 * 4, T = 128, d = 64;
    Buffer Q = random_buffer((size_t)BH * T * d, 7), Kt = random_buffer((size_t)BH * T * d, 8);
    Buffer P = random_buffer((size_t)BH * T * T, 9), V = random_buffer((size_t)BH * T * d, 10);
    Buffer S = random_buffer((size_t)BH * T * T, 11), O = random_buffer((size_t)BH * T * d, 12);
    struct Product {
        std::string name, shape;
        std::function<void(int, bool)> fn;  // (index, via cblas_sgemm rather than synth::sgemm)
    };
    const Product products[] = {
        {"Q K^T", "128 x 128x128x64 NT",
         [&](int i, bool raw) {
             const float *q = Q.get() + (size_t)i * T * d, *k = Kt.get() + (size_t)i * T * d;
             float* s = S.get() + (size_t)i * T * T;
             if (raw)
                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, 1.0f, q, d, k, d, 0.0f, s, T);
             else
                 synth::sgemm(false, true, T, T, d, 1.0f, q, d, k, d, 0.0f, s, T);
         }},
        {"P V", "128 x 128x64x128 NN",
         [&](int i, bool raw) {
             const float *p = P.get() + (size_t)i * T * T, *v = V.get() + (size_t)i * T * d;
             float* o = O.get() + (size_t)i * T * d;
             if (raw)
                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, 1.0f, p, T, v, d, 0.0f, o, d);
             else
                 synth::sgemm(false, false, T, d, T, 1.0f, p, T, v, d, 0.0f, o, d);
         }},
    };
    for (const Product& p : products) {
        const std::vector<Timing> t = time_interleaved(
            {[&] {
                 for (int i = 0; i < BH; i++) p.fn(i, true);
             },
             [&] {
#pragma omp parallel for schedule(static)
                 for (int i = 0; i < BH; i++) p.fn(i, false);
             },
             [&] {
                 for (int i = 0; i < BH; i++) p.fn(i, false);
             }},
            2.0 * BH * T * T * d, reps);  // both products do 2*T*T*d flops each
        report.row("(a) loop, cblas_sgemm on n threads: " + p.name, p.shape, t[0]);
        report.row("(b) omp parallel for, 1-thread sgemm: " + p.name, p.shape, t[1]);
        report.row("(c) loop, synth::sgemm split: " + p.name, p.shape, t[2]);
    }
}

int run(int argc, char** argv) {
    {
        int threads = 2, reps = 20;
        synth::Flags flags("bench", "GEMM throughput of OpenBLAS on the LM benchmark's shapes.");
        flags.add("threads", &threads, "threads for OpenMP and OpenBLAS");
        flags.add("reps", &reps, "timed repetitions per measurement (after one warm-up)");
        if (!flags.parse(argc, argv)) return 0;
        SYNTH_CHECK(threads >= 1, "--threads must be >= 1, got ", threads);
        SYNTH_CHECK(reps >= 1, "--reps must be >= 1, got ", reps);
        synth::set_threads(threads);

        const double peak1 = fma_peak_gflops(1, kPeakRounds), peak = fma_peak_gflops(threads, kPeakRounds);
        const char* coretype = std::getenv("OPENBLAS_CORETYPE");
        std::printf("## GEMM throughput (GFLOP/s)\n\n");
        std::printf("- OpenBLAS kernel: %s%s\n", synth::blas_kernel_name().c_str(), synth::blas_kernel_note().c_str());
        std::printf("- OpenBLAS config: %s\n", synth::blas_config().c_str());
        std::printf("- OPENBLAS_CORETYPE: %s\n", coretype ? coretype : "(unset)");
        std::printf("- threads: %d; reps: %d, interleaved, after one warm-up each\n", threads, reps);
        std::printf("- measured FMA peak (%d-float vectors, no memory traffic, best of %d): %.1f GFLOP/s on 1 thread, "
                    "%.1f on %d\n",
                    kLanes, kPeakRounds, peak1, peak, threads);
        // The provider --precision=bf16 gets in this build on this CPU (precision.h); the tables
        // below time every provider, each set around its own calls, so the default goes back.
        std::printf("- with --precision=bf16: %s\n", synth::set_precision(synth::Precision::Bf16).c_str());
        synth::set_precision(synth::Precision::Fp32);

        Report report(threads);
        report.json_line("fma_peak", 1, peak1);
        report.json_line("fma_peak", threads, peak);
        // Y = X W with X: (B*T) x d_in, W: d_in x d_out, B*T = 4096 tokens. Backward needs
        // dX = dY W^T (A B^T) and dW = X^T dY (A^T B, summed over K = 4096 tokens).
        report.header("Large GEMMs: forward A B, backward A B^T (dX) and A^T B (dW)");
        const int dims[][2] = {{256, 256}, {256, 1024}, {1024, 256}};  // {d_in, d_out}
        for (const auto& w : dims) bench_large(report, false, false, 4096, w[1], w[0], reps);
        for (const auto& w : dims) bench_large(report, false, true, 4096, w[0], w[1], reps);
        for (const auto& w : dims) bench_large(report, true, false, w[0], w[1], 4096, reps);

        // Built without oneDNN, its "ISA" is "not built with oneDNN (make ONEDNN=0)".
        std::string onednn = synth::onednn_isa();
        if (synth::onednn_built())
            onednn = std::string("oneDNN ") + synth::onednn_version() + ", " + onednn +
                     (synth::onednn_has_bf16() ? "" : "; no bf16 matmul on this CPU");
        report.header(("GEMM providers (" + onednn + ")").c_str());
        for (const auto& w : dims) bench_providers(report, false, false, 4096, w[1], w[0], reps);
        for (const auto& w : dims) bench_providers(report, true, false, w[0], w[1], 4096, reps);
        bench_providers(report, false, true, 128, 128, 64, reps);   // attention scores Q K^T, one (batch, head)
        bench_providers(report, false, false, 128, 64, 128, reps);  // attention output P V
        bench_providers_batched(report, reps);                       // all 32 x 4 of them at once

        report.header("Thread ownership: OpenBLAS inside an OpenMP parallel region");
        bench_inside_parallel(report, threads, reps);
        report.header("Thread ownership: 32x4 batched attention GEMMs");
        bench_batched(report, reps);
        report.print_json();
        return 0;
    }
}

}  // namespace

int main(int argc, char** argv) { return synth::cli_main(argc, argv, run); }
