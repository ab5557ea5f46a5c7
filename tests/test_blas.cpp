// synth::sgemm (OpenBLAS, whichever kernel it bound) against the double-accumulating naive loop,
// plus the kernel-selection policy and the load-time assumption it rests on.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/gemm/blas.h"
#include "base/error.h"

namespace {

struct GemmCase {
    bool transA, transB;
    int M, N, K;
    int pad;  // extra elements per row in A, B and C, so strides exceed the minimum
};

std::vector<float> random_matrix(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

// Runs one case through sgemm and sgemm_naive on identical inputs and compares every element
// of C, padding included (the padding must be left untouched).
void check_case(const GemmCase& c, float alpha, float beta) {
    CAPTURE(c.transA);
    CAPTURE(c.transB);
    CAPTURE(c.M);
    CAPTURE(c.N);
    CAPTURE(c.K);
    std::mt19937 rng(1234u + c.M * 7 + c.N * 13 + c.K * 17);
    const int a_rows = c.transA ? c.K : c.M, a_cols = c.transA ? c.M : c.K;
    const int b_rows = c.transB ? c.N : c.K, b_cols = c.transB ? c.K : c.N;
    const int lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
    std::vector<float> A = random_matrix((size_t)a_rows * lda, rng);
    std::vector<float> B = random_matrix((size_t)b_rows * ldb, rng);
    std::vector<float> C0 = random_matrix((size_t)c.M * ldc, rng);
    std::vector<float> got = C0, want = C0;

    synth::sgemm(c.transA, c.transB, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta,
                 got.data(), ldc);
    synth::sgemm_naive(c.transA, c.transB, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb,
                       beta, want.data(), ldc);

    // Float rounding grows like sqrt(K) for random-sign terms; entries are O(sqrt(K)) in size,
    // so the bound is relative to that scale plus the beta*C term.
    const double scale = std::fabs(alpha) * std::sqrt((double)c.K) + std::fabs(beta) + 1.0;
    const double tol = 1e-5 * std::sqrt((double)c.K + 1.0) * scale;
    int bad = 0;
    for (int i = 0; i < c.M; i++) {
        for (int j = 0; j < ldc; j++) {
            const size_t at = (size_t)i * ldc + j;
            const double err = std::fabs((double)got[at] - want[at]);
            if (j >= c.N ? got[at] != C0[at] : !(err <= tol)) bad++;
        }
    }
    CHECK(bad == 0);
}

}  // namespace

TEST_CASE("blas: sgemm matches the naive reference for all transposes and odd sizes") {
    const int sizes[][3] = {{37, 53, 29}, {1, 1, 1}, {130, 7, 65}, {7, 130, 1}, {64, 64, 64}};
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (const auto& s : sizes) check_case({ta, tb, s[0], s[1], s[2], 3}, 0.75f, -1.5f);
}

TEST_CASE("blas: sgemm matches the naive reference on 256x256x256 (the multithreaded path)") {
    for (bool ta : {false, true})
        for (bool tb : {false, true}) check_case({ta, tb, 256, 256, 256, 5}, 1.25f, 0.5f);
}

TEST_CASE("blas: sgemm split over threads: row and column blocks, uneven and empty blocks") {
    // With 3 threads: 301 rows -> blocks of 112, 112, 77; 300 columns (wide C) -> 112, 112, 76;
    // 20 rows -> 16, 4 and an empty third block. All have M*N*K above the split threshold.
    const int saved = omp_get_max_threads();
    synth::set_threads(3);
    const int sizes[][3] = {{301, 40, 200}, {40, 300, 200}, {20, 20, 6000}};
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (const auto& s : sizes) check_case({ta, tb, s[0], s[1], s[2], 2}, -0.5f, 1.0f);
    CHECK(omp_get_max_threads() == 3);  // the split's per-task thread setting did not leak out
    synth::set_threads(saved);
}

TEST_CASE("blas: alpha=1, beta=0 overwrites C without reading it") {
    const int M = 19, N = 23, K = 31;
    std::mt19937 rng(7);
    std::vector<float> A = random_matrix((size_t)M * K, rng), B = random_matrix((size_t)K * N, rng);
    std::vector<float> got((size_t)M * N, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> want((size_t)M * N, std::numeric_limits<float>::quiet_NaN());
    synth::sgemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, got.data(), N);
    synth::sgemm_naive(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, want.data(), N);
    for (size_t i = 0; i < got.size(); i++) {
        REQUIRE(std::isfinite(want[i]));
        REQUIRE(std::fabs(got[i] - want[i]) <= 1e-5f * std::sqrt((float)K) * 4.0f);
    }
}

TEST_CASE("blas: the naive reference computes a hand-checked product") {
    // A = [1 2; 3 4], B = [5 6; 7 8]: A B = [19 22; 43 50], A^T B = [26 30; 38 44],
    // A B^T = [17 23; 39 53]. With alpha=2, beta=-1 and C = ones: 2*AB - 1.
    const float A[] = {1, 2, 3, 4}, B[] = {5, 6, 7, 8};
    float C[] = {1, 1, 1, 1};
    synth::sgemm_naive(false, false, 2, 2, 2, 2.0f, A, 2, B, 2, -1.0f, C, 2);
    CHECK(C[0] == 37);
    CHECK(C[1] == 43);
    CHECK(C[2] == 85);
    CHECK(C[3] == 99);
    float D[4];
    synth::sgemm_naive(true, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, D, 2);
    CHECK(D[0] == 26);
    CHECK(D[3] == 44);
    synth::sgemm_naive(false, true, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, D, 2);
    CHECK(D[1] == 23);
    CHECK(D[2] == 39);
}

TEST_CASE("blas: bad sizes and strides are errors, not BLAS warnings") {
    float x[16] = {};
    CHECK_THROWS_AS(synth::sgemm(false, false, -1, 2, 2, 1, x, 2, x, 2, 0, x, 2), synth::Error);
    CHECK_THROWS_AS(synth::sgemm(false, false, 2, 2, 3, 1, x, 2, x, 2, 0, x, 2), synth::Error);  // lda < K
    CHECK_THROWS_AS(synth::sgemm(true, false, 3, 2, 2, 1, x, 2, x, 2, 0, x, 2), synth::Error);   // lda < M
    CHECK_THROWS_AS(synth::sgemm(false, true, 2, 2, 3, 1, x, 3, x, 2, 0, x, 2), synth::Error);   // ldb < K
    CHECK_THROWS_AS(synth::sgemm(false, false, 2, 3, 2, 1, x, 2, x, 3, 0, x, 2), synth::Error);  // ldc < N
    CHECK_THROWS_AS(synth::sgemm(false, false, 2, 2, 2, 1, nullptr, 2, x, 2, 0, x, 2), synth::Error);
    CHECK_THROWS_AS(synth::set_threads(0), synth::Error);
}

TEST_CASE("blas: set_threads sets the OpenMP team size and turns dynamic teams off") {
    const int saved = omp_get_max_threads();
    omp_set_dynamic(1);
    synth::set_threads(3);
    CHECK(omp_get_max_threads() == 3);
    CHECK(omp_get_dynamic() == 0);
    synth::set_threads(saved);
}

TEST_CASE("blas: kernel policy upgrades kernels that leave the CPU's widest FMA unused") {
    CHECK(synth::blas_better_kernel("Prescott", false, true) == "Haswell");
    CHECK(synth::blas_better_kernel("Prescott", true, true) == "SkylakeX");
    CHECK(synth::blas_better_kernel("NEHALEM", false, true) == "Haswell");
    CHECK(synth::blas_better_kernel("Sandybridge", false, true) == "Haswell");
    CHECK(synth::blas_better_kernel("Prescott", false, false) == "");  // nothing better to offer
    // AVX2 kernels are right for AVX2 CPUs, and not for AVX-512 ones (docs/performance.md).
    CHECK(synth::blas_better_kernel("Zen", false, true) == "");
    CHECK(synth::blas_better_kernel("Haswell", false, true) == "");
    CHECK(synth::blas_better_kernel("haswell", true, true) == "SkylakeX");
    CHECK(synth::blas_better_kernel("Zen", true, true) == "SkylakeX");
    // AVX-512 kernels stay, whichever the CPU reports.
    CHECK(synth::blas_better_kernel("SkylakeX", true, true) == "");
    CHECK(synth::blas_better_kernel("Cooperlake", true, true) == "");
    CHECK(synth::blas_better_kernel("SAPPHIRERAPIDS", true, true) == "");
}

TEST_CASE("blas: OpenBLAS binds its kernel at load time, so setenv alone cannot change it") {
    // This is why blas_select_kernel re-executes the program instead of calling setenv.
    const std::string before = synth::blas_kernel_name();
    const char* old = std::getenv("OPENBLAS_CORETYPE");
    const std::string saved = old ? old : "";
    ::setenv("OPENBLAS_CORETYPE", before == "Haswell" ? "Zen" : "Haswell", 1);
    const std::string after = synth::blas_kernel_name();
    if (old)
        ::setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
    else
        ::unsetenv("OPENBLAS_CORETYPE");
    CHECK(after == before);
    CHECK(synth::blas_config().find("OpenBLAS") != std::string::npos);
}

TEST_CASE("blas: cpu_name reads the model, family and number of the first processor") {
    const std::string name = synth::cpu_name();
    CHECK(!name.empty());
#if defined(__linux__) && defined(__x86_64__)
    // Every x86 Linux /proc/cpuinfo has the three fields.
    CHECK(name != "unknown");
    CHECK(name.find(" (family ") != std::string::npos);
    CHECK(name.find(", model ") != std::string::npos);
    CHECK(name.back() == ')');
#endif
}

TEST_CASE("blas: the kernel note says when synth chose the kernel, and nothing when there is nothing to say") {
    const char* had_core = std::getenv("OPENBLAS_CORETYPE");
    const char* had_marker = std::getenv("SYNTH_BLAS_REEXEC");
    const std::string core = had_core ? had_core : "", marker = had_marker ? had_marker : "";
    ::setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    ::setenv("SYNTH_BLAS_REEXEC", "Prescott", 1);  // what blas_select_kernel leaves for its re-run
    CHECK(synth::blas_kernel_note() == " (chosen by synth: OpenBLAS detected Prescott on this CPU)");
    ::unsetenv("OPENBLAS_CORETYPE");
    ::unsetenv("SYNTH_BLAS_REEXEC");
    CHECK(synth::blas_kernel_note().empty());  // OpenBLAS's own choice: nothing to say
    if (had_core) ::setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    if (had_marker) ::setenv("SYNTH_BLAS_REEXEC", marker.c_str(), 1);
}
