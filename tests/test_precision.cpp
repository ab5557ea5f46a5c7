// --precision=bf16: the bf16 rounding, the two bf16 GEMM providers and oneDNN's fp32 matmul
// against the naive reference, the provider policy for every kind of CPU, and a tiny LM
// trained in bf16 beside fp32 (docs/precision.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "skips.h"
#include "engine/gemm/bf16.h"
#include "engine/gemm/blas.h"
#include "base/error.h"
#include "error_of.h"
#include "base/io.h"
#include "base/json.h"
#include "engine/autograd.h"
#include "engine/kernels.h"
#include "engine/ops.h"
#include "engine/ops_reference.h"
#include "engine/tensor.h"
#include "engine/gemm/onednn.h"
#include "engine/gemm/precision.h"
#include "subprocess.h"
#include "tiny_text.h"

using namespace synth;
using synth_test::error_of;

namespace {

// Sets the GEMM provider for one scope and restores fp32 afterwards, also when a check throws.
struct ProviderScope {
    explicit ProviderScope(GemmProvider g) { set_gemm_provider(g); }
    ~ProviderScope() { set_gemm_provider(GemmProvider::OpenBlas); }
};

std::vector<float> uniform(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
}

std::vector<float> rounded(std::vector<float> v) {
    for (float& x : v) x = bf16_round(x);
    return v;
}

struct Case {
    bool ta, tb;
    int M, N, K, pad;
};

// `gemm` (a synth::sgemm-shaped call) against sgemm_naive on `reference_operand(A)` and
// `reference_operand(B)`, every element of C, padding included (it must stay untouched).
// tol_per_k: the allowed error per unit of sum_k |a_ik b_kj| (the products' magnitude).
template <typename Gemm, typename Ref>
void check_against_naive(const Case& c, float alpha, float beta, Gemm gemm, Ref reference_operand, double tol_per_k) {
    CAPTURE(c.ta);
    CAPTURE(c.tb);
    CAPTURE(c.M);
    CAPTURE(c.N);
    CAPTURE(c.K);
    CAPTURE(beta);
    std::mt19937 rng(99u + c.M * 7 + c.N * 13 + c.K * 17);
    const int a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K, b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
    const int lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
    const std::vector<float> A = uniform((size_t)a_rows * lda, rng), B = uniform((size_t)b_rows * ldb, rng);
    std::vector<float> C0 = uniform((size_t)c.M * ldc, rng);
    if (beta == 0.0f)  // C must not be read
        for (int i = 0; i < c.M; ++i)
            for (int j = 0; j < c.N; ++j) C0[(size_t)i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> got = C0, want = C0, magnitude((size_t)c.M * ldc, 0.0f);
    std::vector<float> absA = A, absB = B;
    for (float& x : absA) x = std::fabs(x);
    for (float& x : absB) x = std::fabs(x);
    gemm(c.ta, c.tb, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
    const std::vector<float> Ar = reference_operand(A), Br = reference_operand(B);
    sgemm_naive(c.ta, c.tb, c.M, c.N, c.K, alpha, Ar.data(), lda, Br.data(), ldb, beta, want.data(), ldc);
    sgemm_naive(c.ta, c.tb, c.M, c.N, c.K, std::fabs(alpha), absA.data(), lda, absB.data(), ldb, 0.0f,
                magnitude.data(), ldc);
    int bad = 0;
    for (int i = 0; i < c.M; ++i)
        for (int j = 0; j < ldc; ++j) {
            const size_t at = (size_t)i * ldc + j;
            if (j >= c.N) {
                bad += got[at] != C0[at] && !(std::isnan(got[at]) && std::isnan(C0[at]));
                continue;
            }
            const double tol = tol_per_k * (magnitude[at] + std::fabs(beta) * 1.0) + 1e-6;
            bad += !(std::fabs((double)got[at] - want[at]) <= tol);
        }
    CHECK(bad == 0);
}

const Case kCases[] = {{false, false, 37, 53, 29, 3}, {false, true, 1, 1, 1, 0},  {true, false, 130, 7, 65, 2},
                       {true, true, 7, 130, 1, 1},    {false, false, 64, 64, 64, 0}, {true, true, 301, 40, 200, 2}};

auto as_is = [](const std::vector<float>& v) { return v; };
auto to_bf16 = [](const std::vector<float>& v) { return rounded(v); };

// A batch of matrices as the attention products lay them out (kernels.h).
struct BatchCase {
    const char* what;
    int batch, heads;
    bool ta, tb;
    int M, N, K;
    kernel::Strided a, b, c;
};

// The batches the model multiplies, at odd sizes: Q K^T on heads read in place, P V with P
// shared by the batch (Random), x W with W shared by the batch and by the heads (Dense), and
// transposed operands of the backward.
std::vector<BatchCase> batch_cases() {
    using kernel::Strided;
    const int B = 3, H = 2, T = 19, D = 7, L = 23;
    return {
        {"q k^T, heads in place", B, H, false, true, T, T, D, Strided::heads_of(T, H, D), Strided::heads_of(T, H, D),
         Strided::contiguous(B, H, T, T)},
        {"p v, p shared by the batch", B, H, false, false, T, D, T, Strided::contiguous(1, H, T, T),
         Strided::heads_of(T, H, D), Strided::heads_of(T, H, D)},
        {"x w, w shared by batch and heads", B, H, false, false, T, L - 4, D, Strided::heads_of(T, H, D),
         Strided::contiguous(1, 1, D, L), Strided::contiguous(B, H, T, L - 4)},
        {"p^T dc, both transposed", B, H, true, true, T, D, T, Strided::contiguous(B, H, T, T),
         Strided::heads_of(D, H, T), Strided::contiguous(B, H, T, D)},
        // The first case's shapes in other strides: a primitive cached for one must not serve the other.
        {"q k^T, contiguous heads", B, H, false, true, T, T, D, Strided::contiguous(B, H, T, D),
         Strided::contiguous(B, H, T, D), Strided::contiguous(B, H, T, T)},
        {"both shared by the batch", B, H, false, false, T, D, T, Strided::contiguous(1, H, T, T),
         Strided::contiguous(1, H, T, D), Strided::contiguous(B, H, T, D)},
        {"one matrix", 1, 1, false, true, T, T, D, Strided::heads_of(T, 1, D), Strided::heads_of(T, 1, D),
         Strided::contiguous(1, 1, T, T)},
    };
}

// The extent of a batch's operand as stored: rows x cols of the last matrix past its start.
int64_t span(const kernel::Strided& s, int batch, int heads, int rows, int cols) {
    return (batch - 1) * s.batch + (heads - 1) * s.head + (int64_t)(rows - 1) * s.ld + cols;
}

// sgemm_batched against sgemm_naive on each matrix of the batch (on `reference_operand`s),
// tolerance as in check_against_naive.
template <typename Ref>
void check_batched_against_naive(const BatchCase& c, float beta, Ref reference_operand, double tol_per_k) {
    CAPTURE(c.what);
    CAPTURE(beta);
    std::mt19937 rng(5u + c.M * 3 + c.K);
    const int a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K, b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
    const std::vector<float> A = uniform(span(c.a, c.batch, c.heads, a_rows, a_cols), rng);
    const std::vector<float> Bm = uniform(span(c.b, c.batch, c.heads, b_rows, b_cols), rng);
    const std::vector<float> C0 = uniform(span(c.c, c.batch, c.heads, c.M, c.N), rng);
    std::vector<float> got = C0;
    sgemm_batched(c.batch, c.heads, c.ta, c.tb, c.M, c.N, c.K, 0.75f, A.data(), {c.a.batch, c.a.head}, c.a.ld,
                  Bm.data(), {c.b.batch, c.b.head}, c.b.ld, beta, got.data(), {c.c.batch, c.c.head}, c.c.ld);
    const std::vector<float> Ar = reference_operand(A), Br = reference_operand(Bm);
    int bad = 0;
    for (int bi = 0; bi < c.batch; ++bi)
        for (int h = 0; h < c.heads; ++h) {
            std::vector<float> want(C0.begin() + (c.c.at(C0.data(), bi, h) - C0.data()), C0.end());
            std::vector<float> magnitude(want.size(), 0.0f), absA = A, absB = Bm;
            for (float& x : absA) x = std::fabs(x);
            for (float& x : absB) x = std::fabs(x);
            sgemm_naive(c.ta, c.tb, c.M, c.N, c.K, 0.75f, c.a.at(Ar.data(), bi, h), c.a.ld, c.b.at(Br.data(), bi, h),
                        c.b.ld, beta, want.data(), c.c.ld);
            sgemm_naive(c.ta, c.tb, c.M, c.N, c.K, 0.75f, c.a.at(absA.data(), bi, h), c.a.ld,
                        c.b.at(absB.data(), bi, h), c.b.ld, 0.0f, magnitude.data(), c.c.ld);
            const float* g = c.c.at(got.data(), bi, h);
            for (int i = 0; i < c.M; ++i)
                for (int j = 0; j < c.N; ++j) {
                    const size_t at = (size_t)i * c.c.ld + j;
                    bad += !(std::fabs((double)g[at] - want[at]) <= tol_per_k * (magnitude[at] + std::fabs(beta)) + 1e-6);
                }
        }
    CHECK(bad == 0);
}

}  // namespace

TEST_CASE("bf16: fp32 -> bf16 rounds to nearest, ties to even; keeps NaN, inf, signed zero") {
    CHECK(bf16_bits(1.0f) == 0x3f80);
    CHECK(bf16_bits(-2.5f) == 0xc020);
    CHECK(bf16_bits(-0.0f) == 0x8000);
    // Between 1 and 1 + 2^-7 (the next bf16): the half-way point goes to the even one (1), just
    // above it goes up; between 1 + 2^-7 and 1 + 2^-6 the half-way point goes up, to the even one.
    CHECK(bf16_bits(1.0f + 0x1p-8f) == 0x3f80);
    CHECK(bf16_bits(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
    CHECK(bf16_bits(1.0f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(bf16_bits(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(bf16_bits(FLT_MAX) == 0x7f80);  // above the largest bf16: rounds to inf
    CHECK(std::isnan(bf16_round(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(bf16_round(-std::numeric_limits<float>::signaling_NaN())));
    CHECK(bf16_to_float(0x4049) == 3.140625f);  // widening is exact
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1e4f, 1e4f);
    for (int i = 0; i < 10000; ++i) {
        const float x = u(rng);
        CHECK(std::fabs(bf16_round(x) - x) <= std::ldexp(std::fabs(x), -8));  // half an ulp of 7 bits
        CHECK(bf16_round(bf16_round(x)) == bf16_round(x));
    }
}

TEST_CASE("blas: rounded-bf16 sgemm is the fp32 product of bf16-rounded operands, for all transposes and strides") {
    ProviderScope bf16(GemmProvider::Bf16Rounded);
    for (const Case& c : kCases)
        for (float beta : {0.0f, 1.0f}) {
            // Exactly the rounded operands' product, to fp32 accumulation error ...
            check_against_naive(c, 0.75f, beta, sgemm, to_bf16, 1e-5);
            // ... and within bf16's rounding of both operands (2 x 2^-8 per product) of the fp32 one.
            check_against_naive(c, 0.75f, beta, sgemm, as_is, 2 * 0x1p-8 + 1e-5);
        }
}

TEST_CASE("blas: the bf16 path really rounds: the result differs from fp32 by more than fp32 error") {
    std::mt19937 rng(5);
    const int n = 64;
    const std::vector<float> A = uniform(n * n, rng), B = uniform(n * n, rng);
    std::vector<float> c32(n * n), c16(n * n);
    sgemm(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, c32.data(), n);
    {
        ProviderScope bf16(GemmProvider::Bf16Rounded);
        sgemm(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, c16.data(), n);
    }
    double worst = 0;
    for (int i = 0; i < n * n; ++i) worst = std::max(worst, (double)std::fabs(c32[i] - c16[i]));
    CHECK(worst > 1e-3);  // fp32 error here is ~1e-6
    CHECK(worst < 0.1);
}

TEST_CASE("blas: the batched attention products run in bf16 too") {
    using namespace synth::kernel;
    const int batch = 2, heads = 3, T = 17, D = 8;
    std::mt19937 rng(11);
    const std::vector<float> q = uniform((size_t)batch * T * heads * D, rng), k = uniform(q.size(), rng);
    // scores(bi, h) (T, T) = q(bi, h) (T, D) k(bi, h)^T, heads read in place from (B, T, H*D).
    const BatchedGemm g{batch, heads, T, T, D, Strided::heads_of(T, heads, D), Transpose::No,
                        Strided::heads_of(T, heads, D), Transpose::Yes, Strided::contiguous(batch, heads, T, T), {}};
    std::vector<float> got((size_t)batch * heads * T * T);
    {
        ProviderScope bf16(GemmProvider::Bf16Rounded);
        batched_gemm_forward(g, q.data(), k.data(), got.data());
    }
    const std::vector<float> qr = rounded(q), kr = rounded(k);
    int bad = 0;
    for (int bi = 0; bi < batch; ++bi)
        for (int h = 0; h < heads; ++h) {
            std::vector<float> want(T * T);
            sgemm_naive(false, true, T, T, D, 1.0f, g.a.at(qr.data(), bi, h), g.a.ld, g.b.at(kr.data(), bi, h), g.b.ld,
                        0.0f, want.data(), T);
            const float* c = g.c.at(got.data(), bi, h);
            for (int i = 0; i < T * T; ++i) bad += !(std::fabs(c[i] - want[i]) <= 1e-5f);
        }
    CHECK(bad == 0);
}

TEST_CASE("blas: sgemm_batched is sgemm per matrix: heads in place, shared matrices, transposes, beta 0 and 1") {
    for (const BatchCase& c : batch_cases())
        for (float beta : {0.0f, 1.0f}) check_batched_against_naive(c, beta, as_is, 1e-5);
    std::vector<float> x(64);
    CHECK(error_of([&] {
              sgemm_batched(2, 1, false, false, 2, 2, 2, 1.0f, x.data(), {4, 0}, 2, x.data(), {4, 0}, 2, 0.0f,
                            x.data(), {0, 0}, 2);
          }) == doctest::Contains("every matrix of C needs its own place"));
}

TEST_CASE("onednn: sgemm_batched on the matrix units is one batched product of rounded operands" *
          synth_test::skip_unless(onednn_has_bf16(), "oneDNN: no bf16 matmul on this CPU, or built with ONEDNN=0")) {
    if (!onednn_has_bf16()) {
        MESSAGE("this CPU (oneDNN: ", onednn_isa(), ") has no bf16 matmul");
        return;
    }
    ProviderScope g(GemmProvider::Bf16Onednn);
    CHECK(gemm_batches_in_one_call());
    for (const BatchCase& c : batch_cases())
        for (float beta : {0.0f, 1.0f}) check_batched_against_naive(c, beta, to_bf16, 1e-5);
}

TEST_CASE("blas: under GemmOperandReuse, products that share an operand give what they give without it") {
    std::mt19937 rng(21);
    const int R = 70, K = 33, N = 45;
    const std::vector<float> x = uniform((size_t)R * K, rng), w = uniform((size_t)K * N, rng),
                             w2 = uniform((size_t)K * N, rng);
    std::vector<float> dy = uniform((size_t)R * N, rng);
    // A linear layer's backward: dx = dy W^T, dW = x^T dy; then dy against a second weight, and
    // dy's first N - 5 columns (the same pointer, another shape: not the same operand).
    auto products = [&] {
        std::vector<float> dx((size_t)R * K), dw((size_t)K * N), dx2((size_t)R * K), part((size_t)R * K);
        sgemm(false, true, R, K, N, 1.0f, dy.data(), N, w.data(), N, 0.0f, dx.data(), K);
        sgemm(true, false, K, N, R, 1.0f, x.data(), K, dy.data(), N, 0.0f, dw.data(), N);
        sgemm(false, true, R, K, N, 1.0f, dy.data(), N, w2.data(), N, 0.0f, dx2.data(), K);
        sgemm(false, true, R, K, N - 5, 1.0f, dy.data(), N, w2.data(), N, 0.0f, part.data(), K);
        return std::vector<std::vector<float>>{dx, dw, dx2, part};
    };
    std::vector<GemmProvider> providers{GemmProvider::OpenBlas, GemmProvider::Bf16Rounded};
    if (onednn_has_bf16()) providers.push_back(GemmProvider::Bf16Onednn);
    for (GemmProvider p : providers) {
        CAPTURE(provider_name(p));
        ProviderScope scope(p);
        const auto plain = products();
        std::vector<std::vector<float>> reused;
        {
            const GemmOperandReuse reuse;
            reused = products();
        }
        CHECK(reused == plain);
        // A new scope converts afresh: dy changed in between, at the same address.
        const std::vector<float> dy_before = dy;
        for (float& v : dy) v = -v;
        const auto plain_negated = products();
        {
            const GemmOperandReuse reuse;
            CHECK(products() == plain_negated);
        }
        dy = dy_before;
    }
}

namespace {

// One batched product forward and backward, blocked (rounded-bf16: one sgemm per block of
// rows) against whole (onednn-bf16: one call), on the same random operands. Gradients start
// random, so both must accumulate. Where the causal contract asks for zeros (a above the
// diagonal under InnerDim, dc there under OutputColumns), the inputs have them.
void check_whole_against_blocked(const kernel::BatchedGemm& g, int a_rows, int a_cols, int b_rows, int b_cols) {
    using namespace synth::kernel;
    std::mt19937 rng(7u + g.M + 3 * g.N + 5 * g.K);
    auto make = [&](const Strided& s, int rows, int cols) { return uniform(span(s, g.batch, g.heads, rows, cols), rng); };
    std::vector<float> a = make(g.a, a_rows, a_cols), b = make(g.b, b_rows, b_cols);
    std::vector<float> dc = make(g.c, g.M, g.N);
    const std::vector<float> da0 = make(g.a, a_rows, a_cols), db0 = make(g.b, b_rows, b_cols);
    auto above = [&](int i, int j) { return j > i + g.causal.q_offset; };
    for (int bi = 0; bi < g.batch; ++bi)
        for (int h = 0; h < g.heads; ++h)
            for (int i = 0; i < g.M; ++i)
                for (int j = 0; j < std::max(g.N, g.K); ++j) {
                    if (g.causal.limit == Causal::InnerDim && j < g.K && above(i, j)) g.a.at(a.data(), bi, h)[(int64_t)i * g.a.ld + j] = 0.0f;
                    if (g.causal.limit == Causal::OutputColumns && j < g.N && above(i, j)) g.c.at(dc.data(), bi, h)[(int64_t)i * g.c.ld + j] = 0.0f;
                }
    struct Out {
        std::vector<float> c, da, db;
    };
    auto run = [&](GemmProvider provider) {
        ProviderScope scope(provider);
        Out o{std::vector<float>(span(g.c, g.batch, g.heads, g.M, g.N), NAN), da0, db0};
        batched_gemm_forward(g, a.data(), b.data(), o.c.data());
        batched_gemm_backward(g, a.data(), b.data(), dc.data(), o.da.data(), o.db.data());
        return o;
    };
    const Out blocked = run(GemmProvider::Bf16Rounded), whole = run(GemmProvider::Bf16Onednn);
    // The same products of the same bf16 operands: they differ only in summation order.
    auto close = [](float x, float y) { return std::fabs(x - y) <= 1e-4f * (1.0f + std::fabs(x)); };
    int bad_c = 0, zeros_lost = 0, bad_da = 0, bad_db = 0;
    for (size_t i = 0; i < blocked.c.size(); ++i) {
        if (std::isnan(blocked.c[i]) && std::isnan(whole.c[i])) continue;  // between matrices: never written
        bad_c += !close(blocked.c[i], whole.c[i]);
        zeros_lost += blocked.c[i] == 0.0f && whole.c[i] != 0.0f;  // what blocks clear, whole clears too
    }
    for (size_t i = 0; i < whole.db.size(); ++i) bad_db += !close(blocked.db[i], whole.db[i]);
    if (g.causal.limit == Causal::InnerDim) {  // da only where the blocked path computes it
        for (int bi = 0; bi < g.batch; ++bi)
            for (int h = 0; h < g.heads; ++h)
                for (int i = 0; i < g.M; ++i)
                    for (int j = 0; j < g.K && !above(i, j); ++j) {
                        const int64_t at = g.a.at(blocked.da.data(), bi, h) - blocked.da.data() + (int64_t)i * g.a.ld + j;
                        bad_da += !close(blocked.da[at], whole.da[at]);
                    }
    } else {
        for (size_t i = 0; i < whole.da.size(); ++i) bad_da += !close(blocked.da[i], whole.da[i]);
    }
    CHECK(bad_c == 0);
    CHECK(zeros_lost == 0);
    CHECK(bad_da == 0);
    CHECK(bad_db == 0);
}

}  // namespace

TEST_CASE("onednn: attention products in one call equal the blocked bf16 path, forward and backward" *
          synth_test::skip_unless(onednn_has_bf16(), "oneDNN: no bf16 matmul on this CPU, or built with ONEDNN=0")) {
    if (!onednn_has_bf16()) {
        MESSAGE("this CPU (oneDNN: ", onednn_isa(), ") has no bf16 matmul");
        return;
    }
    using namespace synth::kernel;
    const int B = 2, H = 3, T = 150, D = 8, L = 160;  // T > 2 causal blocks of 64 rows, the last one short
    SUBCASE("q k^T, causal output columns") {
        check_whole_against_blocked({B, H, T, T, D, Strided::heads_of(T, H, D), Transpose::No,
                                     Strided::heads_of(T, H, D), Transpose::Yes, Strided::contiguous(B, H, T, T),
                                     {Causal::OutputColumns, 0}},
                                    T, D, T, D);
    }
    SUBCASE("q k^T against 7 more keys than queries (q_offset 7)") {
        check_whole_against_blocked({B, H, T, T + 7, D, Strided::heads_of(T, H, D), Transpose::No,
                                     Strided::heads_of(T + 7, H, D), Transpose::Yes,
                                     Strided::contiguous(B, H, T, T + 7), {Causal::OutputColumns, 7}},
                                    T, D, T + 7, D);
    }
    SUBCASE("p v, p shared by the batch (Random), causal inner dimension") {
        check_whole_against_blocked({B, H, T, D, T, Strided::contiguous(1, H, T, T), Transpose::No,
                                     Strided::heads_of(T, H, D), Transpose::No, Strided::heads_of(T, H, D),
                                     {Causal::InnerDim, 0}},
                                    T, T, T, D);
    }
    SUBCASE("x w, w shared by batch and heads (Dense with one W), causal output columns") {
        check_whole_against_blocked({B, H, T, T, D, Strided::heads_of(T, H, D), Transpose::No,
                                     Strided::contiguous(1, 1, D, L), Transpose::No, Strided::contiguous(B, H, T, T),
                                     {Causal::OutputColumns, 0}},
                                    T, D, D, L);
    }
    SUBCASE("a transposed and shared by the batch, no mask") {
        check_whole_against_blocked({B, H, 20, 9, 31, Strided::contiguous(1, H, 31, 20), Transpose::Yes,
                                     Strided::contiguous(B, H, 31, 9), Transpose::No, Strided::contiguous(B, H, 20, 9),
                                     {}},
                                    31, 20, 31, 9);
    }
    SUBCASE("one batch element, one head") {
        check_whole_against_blocked({1, 1, T, T, D, Strided::heads_of(T, 1, D), Transpose::No,
                                     Strided::heads_of(T, 1, D), Transpose::Yes, Strided::contiguous(1, 1, T, T),
                                     {Causal::OutputColumns, 0}},
                                    T, D, T, D);
    }
}

namespace {

// A tensor of uniform values in [-1, 1) from the scratch arena, without a gradient.
Tensor uniform_tensor(const Shape& shape, std::mt19937& rng) {
    Tensor t = new_tensor(shape, false);
    const std::vector<float> v = uniform((size_t)t.numel(), rng);
    std::copy(v.begin(), v.end(), t.data);
    return t;
}

// Whether `bits` are bf16_bits of every value of t.
bool are_bf16_of(const uint16_t* bits, const Tensor& t) {
    if (!bits) return false;
    for (int64_t i = 0; i < t.numel(); ++i)
        if (bits[i] != bf16_bits(t.data[i])) return false;
    return true;
}

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data, t.data + t.numel()); }

// Every element of got within atol + rtol * |want| of the double-precision reference.
void check_close_to(const Tensor& got, const std::vector<double>& want, double atol, double rtol) {
    REQUIRE(got.numel() == (int64_t)want.size());
    int64_t bad = 0;
    for (int64_t i = 0; i < got.numel(); ++i) bad += !(std::fabs(got.data[i] - want[i]) <= atol + rtol * std::fabs(want[i]));
    CHECK(bad == 0);
}

}  // namespace

TEST_CASE("onednn: in inference, layernorm, linear_relu and softmax offer their outputs' exact bf16 bits, and the "
          "products reading them give the same numbers" *
          synth_test::skip_unless(onednn_has_bf16(), "oneDNN: no bf16 matmul on this CPU, or built with ONEDNN=0")) {
    if (!onednn_has_bf16()) return;
    ProviderScope provider(GemmProvider::Bf16Onednn);
    std::mt19937 rng(37);
    const int B = 3, T = 70, C = 20, F = 33, H = 2;  // T > 64: more than one causal block
    const Tensor x = uniform_tensor({B, T, C}, rng), g = uniform_tensor({C}, rng), b = uniform_tensor({C}, rng);
    const Tensor w1 = uniform_tensor({C, F}, rng), b1 = uniform_tensor({F}, rng), w2 = uniform_tensor({F, C}, rng);
    const Tensor logits = uniform_tensor({B, H, T, T}, rng);
    Mask causal;
    causal.causal = true;
    NoGrad no_grad;
    // A block's pattern: the products read the layernorm (as the values of P V too), the ReLU
    // and the softmax, each op's output checked against its plain reference first.
    auto pass = [&](bool companions) {
        Tensor ln = layernorm(x, g, b);
        check_close_to(ln, reference::layernorm(x, g, b, 1e-5), 2e-5, 2e-4);
        Tensor hidden = linear_relu(ln, w1, b1);
        Tensor p = softmax(logits, causal);
        check_close_to(p, reference::softmax(logits, causal), 1e-6, 1e-5);
        for (const Tensor* t : {&ln, &hidden, &p}) {
            const uint16_t* bits = bf16_companion(t->data, t->numel());
            CHECK(companions == (bits != nullptr));
            if (companions) CHECK(are_bf16_of(bits, *t));
        }
        return std::vector<std::vector<float>>{values(hidden), values(linear(hidden, w2, Tensor{})),
                                               values(head_mix(p, ln, causal))};
    };
    const auto plain = pass(false);
    std::vector<std::vector<float>> with_companions;
    {
        const Bf16Companions scope;
        CHECK(bf16_companions_wanted());
        with_companions = pass(true);
    }
    CHECK(with_companions == plain);
    CHECK(bf16_companion(x.data, x.numel()) == nullptr);  // nothing outlives its scope
}

TEST_CASE("onednn: in inference the feed-forward layer's bf16 hidden comes from the first product's epilogue (bias, "
          "ReLU), the residual from the second's, within a bf16 rounding of the plain reference and of its ops" *
          synth_test::skip_unless(onednn_has_bf16(), "oneDNN: no bf16 matmul on this CPU, or built with ONEDNN=0")) {
    if (!onednn_has_bf16()) return;
    ProviderScope provider(GemmProvider::Bf16Onednn);
    std::mt19937 rng(39);
    const int R = 70, C = 20, F = 33, N = 17;
    const Tensor x = uniform_tensor({R, C}, rng), w1 = uniform_tensor({C, F}, rng), b1 = uniform_tensor({F}, rng);
    const Tensor w2 = uniform_tensor({F, N}, rng), b2_given = uniform_tensor({N}, rng);
    const Tensor res_given = uniform_tensor({R, N}, rng);
    for (const auto& [b2, res] : {std::pair{b2_given, Tensor{}}, {Tensor{}, Tensor{}}, {b2_given, res_given}}) {
        CAPTURE(b2.data != nullptr);
        CAPTURE(res.data != nullptr);
        NoGrad no_grad;
        const Tensor fused = feed_forward(x, w1, b1, w2, b2, res);
        Tensor composed = linear(linear_relu(x, w1, b1), w2, b2);
        if (res.data) composed = add(res, composed);
        // The reference in double on bf16-rounded operands, the hidden rounded to bf16 as the
        // second product reads it. Tolerance: 2^-7 of the magnitude of the sum, which covers the
        // fp32 summation and a hidden value that rounds to the neighbouring bf16 (2^-8 of it).
        std::vector<double> h((size_t)R * F);
        for (int r = 0; r < R; ++r)
            for (int f = 0; f < F; ++f) {
                double z = b1.data[f];
                for (int c = 0; c < C; ++c) z += (double)bf16_round(x.data[r * C + c]) * bf16_round(w1.data[c * F + f]);
                h[(size_t)r * F + f] = bf16_round((float)std::max(z, 0.0));
            }
        int bad_ref = 0, bad_ops = 0;
        for (int r = 0; r < R; ++r)
            for (int n = 0; n < N; ++n) {
                double y = (b2.data ? b2.data[n] : 0.0) + (res.data ? res.data[r * N + n] : 0.0), magnitude = 0.0;
                for (int f = 0; f < F; ++f) {
                    const double term = h[(size_t)r * F + f] * bf16_round(w2.data[f * N + n]);
                    y += term, magnitude += std::fabs(term);
                }
                const double tol = std::ldexp(magnitude, -7) + 1e-6;
                bad_ref += !(std::fabs(fused.data[r * N + n] - y) <= tol);
                bad_ops += !(std::fabs(fused.data[r * N + n] - composed.data[r * N + n]) <= tol);
            }
        CHECK(bad_ref == 0);
        CHECK(bad_ops == 0);
    }
}

TEST_CASE("blas: bf16 companions only in inference under onednn-bf16, inside a scope") {
    std::mt19937 rng(38);
    const Tensor x = uniform_tensor({4, 8}, rng), g = uniform_tensor({8}, rng), b = uniform_tensor({8}, rng);
    const Bf16Companions scope;
    SUBCASE("fp32: no bits to offer") {
        NoGrad no_grad;
        CHECK_FALSE(bf16_companions_wanted());
        const Tensor y = layernorm(x, g, b);
        CHECK(bf16_companion(y.data, y.numel()) == nullptr);
    }
    SUBCASE("training: none, so the step's arena does not grow") {
        if (!onednn_has_bf16()) return;
        ProviderScope provider(GemmProvider::Bf16Onednn);
        Tensor xg = new_tensor({4, 8}, true);
        std::copy(x.data, x.data + x.numel(), xg.data);
        const Tensor y = layernorm(xg, g, b);
        CHECK(y.grad != nullptr);
        CHECK(bf16_companion(y.data, y.numel()) == nullptr);
        clear_tape();
    }
}

TEST_CASE("onednn: the fp32 matmul matches the naive reference for all transposes, strides, alpha and beta" *
          synth_test::skip_unless(onednn_built(), "oneDNN: built with ONEDNN=0")) {
    auto onednn_f32 = [](bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                         int ldb, float beta, float* C, int ldc) {
        onednn_gemm(OnednnType::F32, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    };
    for (const Case& c : kCases)
        for (float beta : {0.0f, 1.0f, -1.5f}) check_against_naive(c, beta == 1.0f ? 1.0f : 0.75f, beta, onednn_f32, as_is, 1e-5);
}

TEST_CASE("onednn: the bf16 matmul is the product of rounded operands where the CPU has one, a clear error elsewhere") {
    auto onednn_bf16 = [](bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                          int ldb, float beta, float* C, int ldc) {
        ProviderScope g(GemmProvider::Bf16Onednn);
        sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    };
    if (onednn_has_bf16()) {
        for (const Case& c : kCases)
            for (float beta : {0.0f, 1.0f}) check_against_naive(c, 0.75f, beta, onednn_bf16, to_bf16, 1e-5);
        return;
    }
    const std::string isa = onednn_isa();
    MESSAGE("this CPU (oneDNN: ", isa, ") has no bf16 matmul; checking the error instead");
    std::vector<float> a(4, 1.0f), c(4);
    CHECK(error_of([&] { onednn_bf16(false, false, 2, 2, 2, 1.0f, a.data(), 2, a.data(), 2, 0.0f, c.data(), 2); }) ==
          doctest::Contains("oneDNN has no bf16 matmul"));
}

TEST_CASE("precision: the provider policy for CPUs with AMX, with only AVX512-BF16 (Intel, AMD), and with neither") {
    const CpuBf16 amx{true, true, true}, avx512{false, true, true}, neither{false, false, false};
    const CpuBf16 amd_avx512{false, true, true, true}, amd_old{false, false, false, true};
    const CpuBf16 amx_denied{true, true, false};  // AMX in CPUID, but the kernel refused the tile state
    const CpuBf16 amd_no_onednn{false, true, false, true};  // AVX512-BF16, but oneDNN made no bf16 matmul
    for (const CpuBf16& cpu : {amx, avx512, neither, amx_denied, amd_avx512, amd_old, amd_no_onednn}) {
        CHECK(choose_gemm_provider(Precision::Fp32, cpu, "") == GemmProvider::OpenBlas);
        CHECK(choose_gemm_provider(Precision::Fp32, cpu, "onednn") == GemmProvider::OpenBlas);
        CHECK(choose_gemm_provider(Precision::Bf16, cpu, "rounded") == GemmProvider::Bf16Rounded);
    }
    CHECK(choose_gemm_provider(Precision::Bf16, amx, "") == GemmProvider::Bf16Onednn);
    CHECK(choose_gemm_provider(Precision::Bf16, amx, "auto") == GemmProvider::Bf16Onednn);
    CHECK(choose_gemm_provider(Precision::Bf16, avx512, "") == GemmProvider::Bf16Rounded);
    CHECK(choose_gemm_provider(Precision::Bf16, avx512, "onednn") == GemmProvider::Bf16Onednn);
    CHECK(choose_gemm_provider(Precision::Bf16, neither, "") == GemmProvider::Bf16Rounded);
    CHECK(choose_gemm_provider(Precision::Bf16, amx_denied, "") == GemmProvider::Bf16Rounded);
    CHECK(choose_gemm_provider(Precision::Bf16, amd_avx512, "") == GemmProvider::Bf16Onednn);
    CHECK(choose_gemm_provider(Precision::Bf16, amd_old, "") == GemmProvider::Bf16Rounded);
    CHECK(choose_gemm_provider(Precision::Bf16, amd_no_onednn, "") == GemmProvider::Bf16Rounded);
    CHECK(error_of([&] { choose_gemm_provider(Precision::Bf16, neither, "onednn"); }) ==
          doctest::Contains("oneDNN has no bf16 matmul on this CPU"));
    CHECK(error_of([&] { choose_gemm_provider(Precision::Bf16, amx, "amx"); }) ==
          doctest::Contains("SYNTH_BF16_GEMM=amx is not a bf16 GEMM provider"));
    CHECK(parse_precision("bf16") == Precision::Bf16);
    CHECK(error_of([&] { parse_precision("fp16"); }) == doctest::Contains("--precision=fp16 is not a precision"));
}

TEST_CASE("precision: build/lm --precision=bf16 trains near fp32, and records the precision where results go") {
    const std::string lm = synth_test::binary_or_skip("lm");
    if (lm.empty()) return;
    synth_test::ScratchDir dir;
    write_file_atomic(dir / "tiny.txt", tiny_text());
    auto run = [&](const std::string& precision) {
        auto r = synth_test::run_process(
            lm, {"--data=" + dir / "tiny.txt", "--preset=none", "--variants=R+V", "--d-model=32", "--layers=2",
                 "--heads=2", "--d-ff=64", "--seq=32", "--batch=8", "--steps=50", "--warmup=5", "--eval-every=25",
                 "--eval-batches=4", "--threads=1", "--precision=" + precision, "--runs-dir=" + dir / precision},
            dir.path);
        INFO("stderr: ", r.err);
        REQUIRE(r.status == 0);
        CHECK(r.err.find("precision " + precision + ": ") != std::string::npos);
        const std::string run_dir = dir / (precision + "/lm-tiny-none/R+V-seed1337");
        const JsonObject config = parse_json_object(read_file(run_dir + "/config.json"), "config.json");
        CHECK(config.at("precision") == precision);
        CHECK(config.at("gemm_provider") ==
              provider_name(choose_gemm_provider(parse_precision(precision), probe_cpu_bf16(), "")));
        const JsonObject result = parse_json_object(read_file(run_dir + "/result.json"), "result.json");
        // The group (which splits report tables) names the precision only when it is not fp32,
        // so that runs from before the flag group with fp32 ones.
        CHECK((result.at("group").find("precision=bf16") != std::string::npos) == (precision == "bf16"));
        CHECK(result.at("group").find("precision=fp32") == std::string::npos);
        // result.json rounds to 4 decimals; metrics.jsonl keeps every loss at full precision.
        return std::make_pair(result.num("val_loss"), read_file(run_dir + "/metrics.jsonl"));
    };
    const auto [fp32, fp32_curve] = run("fp32");
    const auto [bf16, bf16_curve] = run("bf16");
    CAPTURE(fp32);
    CAPTURE(bf16);
    CHECK(fp32 < 3.0);                                // it learned something (ln 65 = 4.17 at the start)
    CHECK(bf16_curve != fp32_curve);                  // the rounding took effect
    CHECK(std::fabs(bf16 - fp32) / fp32 < 0.02);      // and tracks fp32 within 2% after 50 steps
    auto bad = synth_test::run_process(lm, {"--data=" + dir / "tiny.txt", "--precision=fp16"}, dir.path);
    CHECK(bad.status != 0);
    CHECK(bad.err.find("--precision=fp16 is not a precision: fp32 or bf16") != std::string::npos);
}
