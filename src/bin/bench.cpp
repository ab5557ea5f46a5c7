// bench: GEMM throughput of the OpenBLAS kernel synth runs with, on the LM benchmark's shapes.
//
//   build/bench [--threads=2] [--reps=20]
//
// Prints the kernel and OpenBLAS config, a nominal peak, then one table row per GEMM shape
// (best and median GFLOP/s over --reps timed calls after one warm-up call), and the
// thread-ownership comparison documented in src/blas.h. Every measurement is also printed as
// one JSON line starting with '{' so scripts can grep it.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "blas.h"
#include "common.h"
#include "flags.h"

namespace {

// 64-byte aligned float buffer (a cache line; also what AVX-512 loads like), filled with noise.
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

// One warm-up call, then `reps` timed calls of `fn`, each doing `flops` floating-point ops.
Timing time_it(const std::function<void()>& fn, double flops, int reps) {
    fn();
    std::vector<double> secs;
    for (int r = 0; r < reps; r++) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(secs.begin(), secs.end());
    return {flops / secs.front() / 1e9, flops / secs[secs.size() / 2] / 1e9};
}

// The clock /proc/cpuinfo reports for the first CPU, in GHz (0 if it cannot be read).
double cpu_ghz() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("cpu MHz", 0) == 0) return std::atof(line.substr(line.find(':') + 1).c_str()) / 1e3;
    return 0.0;
}

// Collects results: a markdown table row per measurement as it happens, and the same
// measurement as one JSON line, printed together at the end so the tables stay unbroken.
class Report {
public:
    explicit Report(int threads) : threads_(threads), kernel_(synth::blas_kernel_name()) {}

    void header(const char* title) {
        std::printf("\n### %s\n\n| %-42s | %-18s | %7s | %7s |\n|%s|%s|%s|%s|\n", title, "what",
                    "M x N x K", "best", "median", std::string(44, '-').c_str(),
                    std::string(20, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str());
    }

    // `threads` is the thread count the measurement ran with (not always the --threads value).
    void row(const std::string& what, const std::string& shape, int threads, const Timing& t) {
        std::printf("| %-42s | %-18s | %7.1f | %7.1f |\n", what.c_str(), shape.c_str(), t.best_gflops,
                    t.median_gflops);
        char line[512];
        std::snprintf(line, sizeof line,
                      "{\"bench\":\"%s\",\"shape\":\"%s\",\"threads\":%d,\"kernel\":\"%s\","
                      "\"best_gflops\":%.2f,\"median_gflops\":%.2f}",
                      what.c_str(), shape.c_str(), threads, kernel_.c_str(), t.best_gflops, t.median_gflops);
        json_.push_back(line);
    }
    void row(const std::string& what, const std::string& shape, const Timing& t) { row(what, shape, threads_, t); }

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

std::string shape_text(bool ta, bool tb, int M, int N, int K) {
    return std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " +
           (ta ? "T" : "N") + (tb ? "T" : "N");
}

// One large GEMM as the model runs it: outside any parallel region, OpenBLAS owns the threads.
void bench_large(Report& report, bool ta, bool tb, int M, int N, int K, int reps) {
    Buffer A = random_buffer((size_t)M * K, 1), B = random_buffer((size_t)K * N, 2);
    Buffer C = random_buffer((size_t)M * N, 3);
    const int lda = ta ? M : K, ldb = tb ? K : N;
    const double flops = 2.0 * M * N * K;
    const std::string shape = shape_text(ta, tb, M, N, K);
    const Timing raw = time_it(
        [&] {
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        M, N, K, 1.0f, A.get(), lda, B.get(), ldb, 0.0f, C.get(), N);
        },
        flops, reps);
    report.row("cblas_sgemm", shape, raw);
    const Timing wrapped =
        time_it([&] { synth::sgemm(ta, tb, M, N, K, 1.0f, A.get(), lda, B.get(), ldb, 0.0f, C.get(), N); },
                flops, reps);
    report.row("synth::sgemm", shape, wrapped);
}

// Whether OpenBLAS goes single-threaded when called from inside an active parallel region:
// compare one 4096x256x256 product with 1 thread, with n threads, and called by one thread
// of an n-thread parallel region while the others wait at the barrier.
void bench_inside_parallel(Report& report, int threads, int reps) {
    const int M = 4096, N = 256, K = 256;
    Buffer A = random_buffer((size_t)M * K, 4), B = random_buffer((size_t)K * N, 5);
    Buffer C = random_buffer((size_t)M * N, 6);
    const double flops = 2.0 * M * N * K;
    const std::string shape = shape_text(false, false, M, N, K);
    auto gemm = [&] { synth::sgemm(false, false, M, N, K, 1.0f, A.get(), K, B.get(), N, 0.0f, C.get(), N); };
    synth::set_threads(1);
    report.row("1 thread, outside a parallel region", shape, 1, time_it(gemm, flops, reps));
    synth::set_threads(threads);
    report.row("n threads, outside a parallel region", shape, time_it(gemm, flops, reps));
    const Timing inside = time_it(
        [&] {
#pragma omp parallel
            {
#pragma omp master
                gemm();
            }
        },
        flops, reps);
    report.row("called by 1 thread of an n-thread region", shape, inside);
}

// The attention core's per-(batch, head) products, 32 batches x 4 heads, T=128, head dim 64,
// per-head contiguous layout (B, H, T, d):
//   scores = Q K^T : 128x128x64 (B transposed);  out = P V : 128x64x128.
// (a) a plain loop, each sgemm split by OpenBLAS over n threads;
// (b) `omp parallel for` over the 128 products, each sgemm single-threaded (blas.h policy).
void bench_batched(Report& report, int reps) {
    const int BH = 32 * 4, T = 128, d = 64;
    Buffer Q = random_buffer((size_t)BH * T * d, 7), Kt = random_buffer((size_t)BH * T * d, 8);
    Buffer P = random_buffer((size_t)BH * T * T, 9), V = random_buffer((size_t)BH * T * d, 10);
    Buffer S = random_buffer((size_t)BH * T * T, 11), O = random_buffer((size_t)BH * T * d, 12);
    const double flops = 2.0 * BH * T * T * d;  // the same for both products
    auto scores = [&](int i) {
        synth::sgemm(false, true, T, T, d, 1.0f, Q.get() + (size_t)i * T * d, d, Kt.get() + (size_t)i * T * d,
                     d, 0.0f, S.get() + (size_t)i * T * T, T);
    };
    auto out = [&](int i) {
        synth::sgemm(false, false, T, d, T, 1.0f, P.get() + (size_t)i * T * T, T, V.get() + (size_t)i * T * d,
                     d, 0.0f, O.get() + (size_t)i * T * d, d);
    };
    struct Product {
        const char* name;
        std::string shape;
        std::function<void(int)> fn;
    };
    const Product products[] = {{"Q K^T", "128x128x64 NT", scores}, {"P V", "128x64x128 NN", out}};
    for (const Product& p : products) {
        const std::string shape = "128 x " + p.shape;
        const Timing loop = time_it([&] { for (int i = 0; i < BH; i++) p.fn(i); }, flops, reps);
        report.row(std::string("(a) loop, n-thread sgemm: ") + p.name, shape, loop);
        const Timing omp = time_it(
            [&] {
#pragma omp parallel for schedule(static)
                for (int i = 0; i < BH; i++) p.fn(i);
            },
            flops, reps);
        report.row(std::string("(b) omp for, 1-thread sgemm: ") + p.name, shape, omp);
    }
}

}  // namespace

int main(int argc, char** argv) {
    synth::blas_select_kernel(argc, argv);
    try {
        int threads = 2, reps = 20;
        synth::Flags flags("bench", "GEMM throughput of OpenBLAS on the LM benchmark's shapes.");
        flags.add("threads", &threads, "threads for OpenMP and OpenBLAS");
        flags.add("reps", &reps, "timed repetitions per measurement (after one warm-up)");
        if (!flags.parse(argc, argv)) return 0;
        SYNTH_CHECK(threads >= 1, "--threads must be >= 1, got ", threads);
        SYNTH_CHECK(reps >= 1, "--reps must be >= 1, got ", reps);
        synth::set_threads(threads);

        // Nominal peak: 2 FMA pipes per core (Zen 2/3, Skylake-SP Gold), 8 (AVX2) or 16
        // (AVX-512) floats per FMA, 2 flops per FMA, at the reported clock (boost may exceed it).
        const bool avx512 = __builtin_cpu_supports("avx512f");
        const double ghz = cpu_ghz();
        const double peak = threads * 2.0 * (avx512 ? 16 : 8) * 2.0 * ghz;
        std::printf("## GEMM throughput (GFLOP/s)\n\n");
        std::printf("- OpenBLAS kernel: %s\n- OpenBLAS config: %s\n", synth::blas_kernel_name().c_str(),
                    synth::blas_config().c_str());
        const char* coretype = std::getenv("OPENBLAS_CORETYPE");
        std::printf("- OPENBLAS_CORETYPE: %s\n", coretype ? coretype : "(unset)");
        std::printf("- threads: %d, reps: %d (best and median after one warm-up)\n", threads, reps);
        std::printf("- nominal peak: %d cores x 2 FMA pipes x %d floats x 2 flops x %.3f GHz = %.1f GFLOP/s\n",
                    threads, avx512 ? 16 : 8, ghz, peak);

        // Y = X W with X: (B*T) x d_in, W: d_in x d_out, B*T = 4096 tokens. Backward needs
        // dX = dY W^T (A B^T) and dW = X^T dY (A^T B, K = 4096 tokens).
        Report report(threads);
        report.header("Large GEMMs: forward A B, backward A B^T (dX) and A^T B (dW)");
        const int shapes[][2] = {{256, 256}, {256, 1024}, {1024, 256}};  // d_in, d_out
        for (const auto& s : shapes) bench_large(report, false, false, 4096, s[1], s[0], reps);
        for (const auto& s : shapes) bench_large(report, false, true, 4096, s[0], s[1], reps);
        for (const auto& s : shapes) bench_large(report, true, false, s[0], s[1], 4096, reps);

        report.header("Thread ownership: OpenBLAS inside an OpenMP parallel region");
        bench_inside_parallel(report, threads, reps);
        report.header("Thread ownership: 32x4 batched attention GEMMs");
        bench_batched(report, reps);
        report.print_json();
        return 0;
    } catch (const synth::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
