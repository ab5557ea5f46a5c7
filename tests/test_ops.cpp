// Every op in ops.h: its backward against central differences (gradcheck.h), and each
// optimised forward kernel against its naive double-precision loop (ops_reference.h), on small
// odd shapes (B=2, H=3, T=5, C=7, ...) so that no size happens to be a multiple of another.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/fastmath.h"
#include "gradcheck.h"
#include "engine/ops.h"
#include "engine/ops_reference.h"
#include "base/rng.h"
#include "engine/tensor.h"

using namespace synth;

namespace {

// Runs gradcheck at the call site and reports its summary on failure.
#define CHECK_GRADS(...)                                   \
    do {                                                   \
        const GradCheckResult gc_ = gradcheck(__VA_ARGS__); \
        INFO(gc_.summary());                               \
        CHECK(gc_.ok);                                     \
        CHECK(gc_.checked > 0);                            \
    } while (0)

std::vector<double> copy_values(const Tensor& t) { return std::vector<double>(t.data, t.data + t.numel()); }

Tensor randn(const Shape& shape, Rng& rng, bool with_grad = true) {
    Tensor t = new_tensor(shape, with_grad);
    rng.fill_normal(t.data, t.numel(), 0.0f, 1.0f);
    return t;
}

// Every element of got within atol + rtol * |want| of the double-precision reference.
void check_close(const Tensor& got, const std::vector<double>& want, double atol = 1e-5, double rtol = 1e-4) {
    REQUIRE(got.numel() == (int64_t)want.size());
    int64_t bad = -1;
    for (int64_t i = 0; i < got.numel() && bad < 0; ++i)
        if (!(std::fabs(got.data[i] - want[i]) <= atol + rtol * std::fabs(want[i]))) bad = i;
    INFO("first mismatch at element " << bad << ": got " << (bad >= 0 ? got.data[bad] : 0.0f) << ", want "
                                      << (bad >= 0 ? want[bad] : 0.0));
    CHECK(bad == -1);
}

// A deliberately configurable op for testing the checker: y = 2x, whose backward adds
// factor * dy (factor = 2 is correct), or with accumulate = false wrongly assigns it.
Tensor twice(const Tensor& x, float backward_factor, bool accumulate = true) {
    Tensor y = new_tensor(Shape(x.dims.begin(), x.dims.begin() + x.ndim), needs_grad({&x}));
    for (int64_t i = 0; i < x.numel(); ++i) y.data[i] = 2.0f * x.data[i];
    if (y.grad)
        record("twice", {x}, y, [=] {
            for (int64_t i = 0; i < x.numel(); ++i)
                x.grad[i] = backward_factor * y.grad[i] + (accumulate ? x.grad[i] : 0.0f);
        });
    return y;
}

}  // namespace

// =====================================================================================
// the checker itself
// =====================================================================================
TEST_CASE("op: gradcheck passes a correct backward and catches a 5% wrong one") {
    Rng rng(1);
    Tensor x = randn({3, 5}, rng), z = randn({3, 5}, rng);
    SUBCASE("correct backward passes") {
        CHECK_GRADS({x}, [&] { return twice(x, 2.0f); });
    }
    SUBCASE("backward 5% too small fails at the first point") {
        const GradCheckResult r = gradcheck({x}, [&] { return twice(x, 1.9f); });
        INFO(r.summary());
        CHECK_FALSE(r.ok);
        CHECK(r.fail_input == 0);
        CHECK(r.fail_index == 0);
        CHECK(r.fail_numeric == doctest::Approx(r.fail_analytic / 0.95).epsilon(1e-3));
    }
    SUBCASE("backward 5% too large fails") {
        CHECK_FALSE(gradcheck({x}, [&] { return twice(x, 2.1f); }).ok);
    }
    SUBCASE("the failing input is identified") {
        const GradCheckResult r = gradcheck({x, z}, [&] { return add(twice(x, 2.0f), twice(z, 1.9f)); });
        CHECK_FALSE(r.ok);
        CHECK(r.fail_input == 1);
    }
    SUBCASE("a backward that overwrites instead of accumulating fails") {
        const GradCheckResult r = gradcheck({x}, [&] { return twice(x, 2.0f, false); });
        INFO(r.summary());
        CHECK_FALSE(r.ok);
        CHECK_FALSE(r.accumulates);
        CHECK(r.fail_input == 0);
    }
    SUBCASE("a missing backward fails") {
        const GradCheckResult r = gradcheck({x, z}, [&] {
            Tensor y = new_tensor({3, 5}, needs_grad({&z}));
            for (int i = 0; i < 15; ++i) y.data[i] = x.data[i] * z.data[i];
            record("mul_z", {x, z}, y, [=] {
                for (int i = 0; i < 15; ++i) z.grad[i] += x.data[i] * y.grad[i];
            });
            return y;
        });
        CHECK_FALSE(r.ok);
        CHECK(r.fail_input == 0);
    }
    SUBCASE("points are capped, spread and include both ends") {
        const std::vector<int64_t> p = gradcheck_points(1000, 48);
        REQUIRE(p.size() == 48);
        CHECK(p.front() == 0);
        CHECK(p.back() == 999);
        for (size_t i = 1; i < p.size(); ++i) CHECK(p[i] > p[i - 1]);
        CHECK(gradcheck_points(7, 48).size() == 7);
    }
    CHECK(tape_size() == 0);
}

// =====================================================================================
// linear algebra
// =====================================================================================
TEST_CASE("op: linear") {
    Rng rng(2);
    const int B = 2, T = 5, K = 7, N = 3;
    Tensor x = randn({B, T, K}, rng);
    Tensor b = randn({N}, rng);
    for (Transpose w_layout : {Transpose::No, Transpose::Yes}) {
        for (bool with_bias : {true, false}) {
            const bool trans_w = w_layout == Transpose::Yes;
            CAPTURE(trans_w);
            CAPTURE(with_bias);
            Tensor w = trans_w ? randn({N, K}, rng) : randn({K, N}, rng);
            const Tensor bias = with_bias ? b : Tensor{};
            {
                NoGrad ng;
                const Tensor y = linear(x, w, bias, w_layout);
                CHECK(y.shape_str() == "(2, 5, 3)");
                check_close(y, reference::linear(x, w, bias, w_layout));
            }
            if (with_bias)
                CHECK_GRADS({x, w, b}, [&] { return linear(x, w, b, w_layout); });
            else
                CHECK_GRADS({x, w}, [&] { return linear(x, w, Tensor{}, w_layout); });
            // alpha scales x op(W) but not the bias.
            {
                NoGrad ng;
                const Tensor y = linear(x, w, bias, w_layout), ys = linear(x, w, bias, w_layout, -0.375f);
                for (int i = 0; i < B * T * N; ++i) {
                    const float bi = with_bias ? b.data[i % N] : 0.0f;
                    CHECK(ys.data[i] == doctest::Approx(-0.375f * (y.data[i] - bi) + bi).epsilon(1e-5));
                }
            }
            CHECK_GRADS({x, w, b}, [&] { return linear(x, w, b, w_layout, -0.375f); });
        }
    }
}

TEST_CASE("op: linear_relu equals relu(linear) and has the same gradients") {
    // The kinks are at pre-activations, which a skip predicate on inputs cannot see: draw
    // inputs until every pre-activation is clear of 0 by more than any eps-perturbation moves it.
    Tensor x, w, b;
    for (uint64_t seed = 12;; ++seed) {
        Rng rng(seed);
        x = randn({2, 5, 7}, rng), w = randn({7, 6}, rng), b = randn({6}, rng);
        NoGrad ng;
        const Tensor z = linear(x, w, b);
        bool clear = true;
        for (int i = 0; i < 60; ++i) clear = clear && std::fabs(z.data[i]) > 0.1f;
        if (clear) break;
        REQUIRE(seed < 1000);
    }
    {
        NoGrad ng;
        const Tensor y = linear_relu(x, w, b), ref = relu(linear(x, w, b));
        CHECK(y.shape_str() == "(2, 5, 6)");
        int active = 0;
        for (int i = 0; i < 60; ++i) {
            CHECK(y.data[i] == ref.data[i]);
            active += y.data[i] > 0.0f;
        }
        CHECK(active > 10);  // both sides of the kink are exercised
        CHECK(active < 50);
    }
    CHECK_GRADS({x, w, b}, [&] { return linear_relu(x, w, b); });
}

TEST_CASE("op: feed_forward is linear(linear_relu) (+ a residual) with its gradients (fp32; its bf16 inference path: "
          "test_precision)") {
    Tensor x, w1, b1, w2, b2, res;
    for (uint64_t seed = 40;; ++seed) {  // pre-activations clear of the ReLU's kink, as above
        Rng rng(seed);
        x = randn({2, 5, 7}, rng), w1 = randn({7, 6}, rng), b1 = randn({6}, rng);
        w2 = randn({6, 4}, rng), b2 = randn({4}, rng), res = randn({2, 5, 4}, rng);
        NoGrad ng;
        const Tensor z = linear(x, w1, b1);
        bool clear = true;
        for (int i = 0; i < 60; ++i) clear = clear && std::fabs(z.data[i]) > 0.1f;
        if (clear) break;
        REQUIRE(seed < 1000);
    }
    {
        NoGrad ng;
        const Tensor y = feed_forward(x, w1, b1, w2, b2), ref = linear(relu(linear(x, w1, b1)), w2, b2);
        const Tensor yr = feed_forward(x, w1, b1, w2, b2, res), ref_r = add(res, ref);
        CHECK(y.shape_str() == "(2, 5, 4)");
        for (int i = 0; i < 40; ++i) CHECK(y.data[i] == ref.data[i]);
        for (int i = 0; i < 40; ++i) CHECK(yr.data[i] == ref_r.data[i]);
    }
    CHECK_GRADS({x, w1, b1, w2, b2}, [&] { return feed_forward(x, w1, b1, w2, b2); });
    CHECK_GRADS({x, w1, b1, w2, b2, res}, [&] { return feed_forward(x, w1, b1, w2, b2, res); });
}

TEST_CASE("op: bmm, all transposes, with and without batch broadcast") {
    Rng rng(3);
    const int H = 3, M = 5, K = 4, N = 7;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (const std::pair<int, int>& batches : {std::pair{2, 2}, std::pair{1, 2}, std::pair{2, 1}}) {
                const int Ba = batches.first, Bb = batches.second;
                CAPTURE(ta);
                CAPTURE(tb);
                CAPTURE(Ba);
                CAPTURE(Bb);
                const Transpose op_a = ta ? Transpose::Yes : Transpose::No, op_b = tb ? Transpose::Yes : Transpose::No;
                Tensor a = ta ? randn({Ba, H, K, M}, rng) : randn({Ba, H, M, K}, rng);
                Tensor b = tb ? randn({Bb, H, N, K}, rng) : randn({Bb, H, K, N}, rng);
                {
                    NoGrad ng;
                    const Tensor c = bmm(a, b, op_a, op_b);
                    CHECK(c.shape_str() == "(2, 3, 5, 7)");
                    check_close(c, reference::bmm(a, b, op_a, op_b));
                }
                CHECK_GRADS({a, b}, [&] { return bmm(a, b, op_a, op_b); });
            }
}

TEST_CASE("op: head_scores and head_mix equal split_heads, bmm and merge_heads, with gradients") {
    Rng rng(13);
    const int B = 2, Tq = 5, Tk = 6, H = 3, D = 4, d = H * D;
    Tensor q = randn({B, Tq, d}, rng), k = randn({B, Tk, d}, rng), v = randn({B, Tk, d}, rng);
    for (int Bp : {B, 1}) {  // attention weights per batch element, or broadcast (R, FR)
        CAPTURE(Bp);
        Tensor p = randn({Bp, H, Tq, Tk}, rng);
        {
            NoGrad ng;
            const Tensor s = head_scores(q, k, H), s_ref = bmm(split_heads(q, H), split_heads(k, H), Transpose::No, Transpose::Yes);
            CHECK(s.shape_str() == "(2, 3, 5, 6)");
            for (int64_t i = 0; i < s.numel(); ++i) CHECK(s.data[i] == s_ref.data[i]);
            const Tensor o = head_mix(p, v), o_ref = merge_heads(bmm(p, split_heads(v, H), Transpose::No, Transpose::No));
            CHECK(o.shape_str() == "(2, 5, 12)");
            for (int64_t i = 0; i < o.numel(); ++i) CHECK(o.data[i] == o_ref.data[i]);
        }
        CHECK_GRADS({q, k}, [&] { return head_scores(q, k, H); });
        CHECK_GRADS({p, v}, [&] { return head_mix(p, v); });
    }
    CHECK_THROWS_WITH_AS(head_scores(q, k, 5), doctest::Contains("head_scores: q (2, 5, 12) and k (2, 6, 12) in 5 heads"),
                         Error);
    CHECK_THROWS_WITH_AS(head_mix(randn({B, H, Tq, Tq}, rng), v), doctest::Contains("head_mix: weights (2, 3, 5, 5)"),
                         Error);
}

TEST_CASE("op: head_mix with one p for the batch equals the plain reference, with gradients") {
    // R, Rfix and FR give head_mix a p of batch 1, which every sequence's products read in place
    // (stride 0), and whose gradient sums over the batch. Against the double-precision loop within
    // 1e-5 + 1e-4 relative (fp32 sums of <= 153 terms of unit scale), causal over several 64-row
    // blocks with and without a query offset; its gradients against the per-sequence path (p
    // copied to every sequence by broadcast_batch) within the same tolerance, and by central
    // differences on a small shape.
    Rng rng(15);
    const int B = 3, H = 2, D = 5, d = H * D;
    for (int q0 : {0, 3})
        for (bool causal : {false, true}) {
            CAPTURE(q0);
            CAPTURE(causal);
            const int Tq = 150, Tk = Tq + q0;
            Mask mask;
            mask.causal = causal;
            mask.q_offset = q0;
            Tensor r = randn({1, H, Tq, Tk}, rng), v = randn({B, Tk, d}, rng);
            const Tensor p = softmax(r, mask);  // 0 above the diagonal when causal, as head_mix requires
            {
                NoGrad ng;
                check_close(head_mix(p, v, mask), reference::head_mix(p, v));
            }
            // Gradients of r and v through the shared path and through the per-sequence one.
            Tensor w = randn({B, Tq, d}, rng, false);
            auto grads = [&](bool shared) {
                std::memset(r.grad, 0, r.numel() * sizeof(float));
                std::memset(v.grad, 0, v.numel() * sizeof(float));
                const Tensor pr = softmax(r, mask);
                backward(sum(mul(head_mix(shared ? pr : broadcast_batch(pr, B), v, mask), w)));
                std::vector<double> g(r.grad, r.grad + r.numel());
                g.insert(g.end(), v.grad, v.grad + v.numel());
                return g;
            };
            const std::vector<double> g_shared = grads(true), g_each = grads(false);
            int64_t bad = 0;
            for (size_t i = 0; i < g_shared.size(); ++i)
                bad += !(std::fabs(g_shared[i] - g_each[i]) <= 1e-5 + 1e-4 * std::fabs(g_each[i]));
            CHECK(bad == 0);
        }
    Tensor p = randn({1, 2, 4, 6}, rng), v = randn({3, 6, 2 * 3}, rng);
    CHECK_GRADS({p, v}, [&] { return head_mix(p, v); });
}

TEST_CASE("op: causal head_scores, head_linear and head_mix skip blocks above the diagonal, exactly, also in a mixture") {
    // Over 64 query rows, so the products run in several row blocks (64, 64, 22), the last
    // one ragged; q_offset 3 is a query window that starts after 3 cached keys.
    // The scratch arena is first filled with NaN, so a skipped block that were left
    // unwritten would hold NaN, and the mixture's gradient (sum over the whole plane of
    // logits x their gradient, 0 above the diagonal) would turn NaN with it.
    Rng rng(14);
    const int B = 2, H = 2, D = 3, d = H * D, Tq = 150;
    for (int q0 : {0, 3}) {
        CAPTURE(q0);
        const int Tk = Tq + q0;
        for (int round = 0; round < 2; ++round) {  // round 0 grows the arena to hold it all
            scratch().reset();
            const size_t n = 8u << 20;
            float* p = scratch().alloc(n);
            for (size_t i = 0; i < n; ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
        }
        scratch().reset();
        // Causal, and in the first batch element the last 7 keys are padding (as in a padded
        // decoder batch); head_scores, head_linear and head_mix read only causal and q_offset.
        std::vector<uint8_t> pad((size_t)B * Tk, 0);
        for (int j = Tk - 7; j < Tk; ++j) pad[j] = 1;
        Mask causal;
        causal.causal = true;
        causal.q_offset = q0;
        causal.key_pad = pad.data();
        causal.batch = B;
        Tensor q = randn({B, Tq, d}, rng), k = randn({B, Tk, d}, rng), v = randn({B, Tk, d}, rng);
        Tensor r = randn({1, H, Tq, Tk}, rng);  // batch-independent logits, as R's
        // Attention with the causal mask given to the softmax only (every product computed in
        // full), and with it given to head_scores and head_mix too (blocks skipped).
        auto attend = [&](const Mask& gemm_mask) {
            return head_mix(softmax(head_scores(q, k, H, gemm_mask), causal), v, gemm_mask);
        };
        auto attend_r = [&](const Mask& gemm_mask) { return head_mix(softmax(r, causal), v, gemm_mask); };
        // Dense Synthesizer's logits from the heads of q, one W2 per head or one shared.
        Tensor w2 = randn({H, D, Tk + 5}, rng), b2 = randn({H, Tk + 5}, rng);
        Tensor w2s = randn({1, D, Tk + 5}, rng), b2s = randn({1, Tk + 5}, rng);
        auto attend_d = [&](const Mask& gemm_mask, bool shared) {
            const Tensor logits = shared ? head_linear(q, H, w2s, b2s, Tk, gemm_mask) : head_linear(q, H, w2, b2, Tk, gemm_mask);
            return head_mix(softmax(logits, causal), v, gemm_mask);
        };
        // A mixture of V's and R's logits inside the softmax, as R+V.
        Tensor wm = randn({H, 2}, rng);
        auto attend_m = [&](const Mask& gemm_mask) {
            return head_mix(softmax(mix({head_scores(q, k, H, gemm_mask), r}, wm), causal), v, gemm_mask);
        };
        {
            NoGrad ng;
            // Below the diagonal the product; above it the product or 0 (a skipped block).
            const Tensor s = head_scores(q, k, H, causal), s_full = head_scores(q, k, H);
            int64_t wrong = 0, zeros = 0;
            for (int64_t row = 0; row < (int64_t)B * H * Tq; ++row)
                for (int j = 0; j < Tk; ++j) {
                    const float got = s.data[row * Tk + j], want = s_full.data[row * Tk + j];
                    const bool same = std::fabs(got - want) <= 1e-5f * (1.0f + std::fabs(want));
                    const bool above = j > (int)(row % Tq) + q0;
                    zeros += above && got == 0.0f;
                    wrong += !(same || (above && got == 0.0f));
                }
            CHECK(wrong == 0);
            CHECK(zeros >= (int64_t)B * H * 64 * 64);  // at least the block right of rows 0..63
            check_close(attend(causal), copy_values(attend(Mask{})), 1e-5, 1e-5);
            check_close(attend_r(causal), copy_values(attend_r(Mask{})), 1e-5, 1e-5);
            for (bool shared : {false, true})
                check_close(attend_d(causal, shared), copy_values(attend_d(Mask{}, shared)), 1e-5, 1e-5);
            check_close(attend_m(causal), copy_values(attend_m(Mask{})), 1e-5, 1e-5);
        }
        // The analytic gradients of every element agree with the unskipped computation's ...
        auto grads = [&](std::vector<Tensor> inputs, const std::function<Tensor()>& f) {
            for (Tensor& t : inputs) std::memset(t.grad, 0, t.numel() * sizeof(float));
            backward(sum(f()));
            std::vector<std::vector<double>> g;
            for (const Tensor& t : inputs) g.emplace_back(t.grad, t.grad + t.numel());
            return g;
        };
        const auto g_skip = grads({q, k, v}, [&] { return attend(causal); });
        const auto g_full = grads({q, k, v}, [&] { return attend(Mask{}); });
        const auto gr_skip = grads({r, v}, [&] { return attend_r(causal); });
        const auto gr_full = grads({r, v}, [&] { return attend_r(Mask{}); });
        // Largest difference per input, relative to that input's largest gradient: summing in
        // blocks changes the rounding of sums with heavy cancellation (a shared W2 column sums
        // 600 terms), so element-wise relative errors are no measure there.
        auto max_diff = [](const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
            double m = 0.0;
            for (size_t t = 0; t < a.size(); ++t) {
                double scale = 1e-12, diff = 0.0;
                for (size_t i = 0; i < a[t].size(); ++i) {
                    if (!std::isfinite(a[t][i]) || !std::isfinite(b[t][i])) return HUGE_VAL;
                    scale = std::max(scale, std::fabs(b[t][i]));
                    diff = std::max(diff, std::fabs(a[t][i] - b[t][i]));
                }
                m = std::max(m, diff / scale);
            }
            return m;
        };
        CHECK(max_diff(g_skip, g_full) < 1e-5);
        CHECK(max_diff(gr_skip, gr_full) < 1e-5);
        const auto gm_skip = grads({q, k, r, wm, v}, [&] { return attend_m(causal); });
        const auto gm_full = grads({q, k, r, wm, v}, [&] { return attend_m(Mask{}); });
        CHECK(max_diff(gm_skip, gm_full) < 1e-5);
        CHECK_GRADS({q, k, r, wm, v}, [&] { return attend_m(causal); });
        for (bool shared : {false, true}) {
            CAPTURE(shared);
            Tensor &w = shared ? w2s : w2, &b = shared ? b2s : b2;
            const auto gd_skip = grads({q, w, b, v}, [&] { return attend_d(causal, shared); });
            const auto gd_full = grads({q, w, b, v}, [&] { return attend_d(Mask{}, shared); });
            CHECK(max_diff(gd_skip, gd_full) < 1e-5);
            CHECK_GRADS({q, w, b, v}, [&] { return attend_d(causal, shared); });
        }
        // ... and with finite differences.
        CHECK_GRADS({q, k, v}, [&] { return attend(causal); });
        CHECK_GRADS({r, v}, [&] { return attend_r(causal); });
    }
}

// =====================================================================================
// elementwise
// =====================================================================================
TEST_CASE("op: add, same shape and broadcast") {
    Rng rng(4);
    Tensor a = randn({2, 5, 7}, rng);
    SUBCASE("same shape") {
        Tensor b = randn({2, 5, 7}, rng);
        CHECK_GRADS({a, b}, [&] { return add(a, b); });
    }
    SUBCASE("broadcast (C)") {
        Tensor b = randn({7}, rng);
        {
            NoGrad ng;
            const Tensor y = add(a, b);
            std::vector<double> want(70);
            for (int i = 0; i < 70; ++i) want[i] = (double)a.data[i] + b.data[i % 7];
            check_close(y, want);
        }
        CHECK_GRADS({a, b}, [&] { return add(a, b); });
    }
    SUBCASE("broadcast (T, C)") {
        Tensor b = randn({5, 7}, rng);
        CHECK_GRADS({a, b}, [&] { return add(a, b); });
    }
    SUBCASE("large enough for the threads: each element the one float addition") {
        NoGrad ng;
        Tensor x = randn({4, 128, 256}, rng);
        for (const Shape& bs : {Shape{4, 128, 256}, Shape{256}, Shape{128, 256}}) {
            Tensor b = randn(bs, rng);
            const Tensor y = add(x, b);
            int64_t wrong = 0;
            for (int64_t i = 0; i < x.numel(); ++i) wrong += y.data[i] != x.data[i] + b.data[i % b.numel()];
            CHECK(wrong == 0);
        }
    }
}

TEST_CASE("op: mul and scale") {
    Rng rng(5);
    Tensor a = randn({2, 5, 7}, rng), b = randn({2, 5, 7}, rng);
    CHECK_GRADS({a, b}, [&] { return mul(a, b); });
    CHECK_GRADS({a}, [&] { return scale(a, -1.7f); });
    NoGrad ng;
    const Tensor y = mul(a, b), z = scale(a, -1.7f);
    for (int i = 0; i < 70; ++i) {
        CHECK(y.data[i] == a.data[i] * b.data[i]);
        CHECK(z.data[i] == a.data[i] * -1.7f);
    }
}

TEST_CASE("fast_exp: within 2e-7 relative of exp on [-87, 88], exactly 0 below, NaN stays NaN") {
    double worst = 0.0;
    for (int i = 0; i <= 2000000; ++i) {
        const float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        const double want = std::exp((double)x);
        worst = std::max(worst, std::fabs((double)fast_exp(x) - want) / want);
    }
    MESSAGE("fast_exp worst relative error ", worst);
    CHECK(worst < 2e-7);
    CHECK(fast_exp(0.0f) == 1.0f);
    CHECK(fast_exp(-87.5f) == 0.0f);
    CHECK(fast_exp(-std::numeric_limits<float>::infinity()) == 0.0f);
    CHECK(std::isfinite(fast_exp(1000.0f)));
    CHECK(std::isnan(fast_exp(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("op: relu") {
    Rng rng(6);
    Tensor x = randn({2, 5, 7}, rng);
    x.data[3] = 0.004f;  // a point at the kink, which must be skipped
    GradCheckOptions opt;
    opt.skip = skip_near_zero(opt.eps);
    const GradCheckResult r = gradcheck({x}, [&] { return relu(x); }, opt);
    INFO(r.summary());
    CHECK(r.ok);
    CHECK(r.skipped >= 1);
    NoGrad ng;
    const Tensor y = relu(x);
    for (int i = 0; i < 70; ++i) CHECK(y.data[i] == std::max(x.data[i], 0.0f));
}

TEST_CASE("op: gelu against its tanh formula") {
    Rng rng(7);
    Tensor x = randn({2, 5, 7}, rng);
    x.data[0] = -4.0f;
    x.data[1] = 3.5f;
    CHECK_GRADS({x}, [&] { return gelu(x); });
    NoGrad ng;
    check_close(gelu(x), reference::gelu(x), 1e-6, 1e-5);
}

TEST_CASE("op: glu is the first half times the sigmoid of the second") {
    Rng rng(23);
    Tensor x = randn({2, 5, 6}, rng);
    x.data[0] = -4.0f;
    x.data[3] = 5.0f;  // a large gate: sigmoid near 1
    {
        NoGrad ng;
        const Tensor y = glu(x);
        CHECK(y.shape_str() == "(2, 5, 3)");
        check_close(y, reference::glu(x), 1e-6, 1e-5);
        CHECK(y.data[0] == doctest::Approx(-4.0f / (1.0f + std::exp(-x.data[3]))));
    }
    CHECK_GRADS({x}, [&] { return glu(x); });
}

TEST_CASE("op: dropout") {
    Rng rng(8);
    const float p = 0.3f;
    Tensor x = randn({2, 5, 7}, rng);
    // The mask is a pure function of (seed, counter): the same in every forward call.
    CHECK_GRADS({x}, [&] { return dropout(x, p, 1234, 7); });

    Tensor ones = new_tensor({20000}, false);
    for (int i = 0; i < 20000; ++i) ones.data[i] = 1.0f;
    const Tensor y = dropout(ones, p, 99, 0), y2 = dropout(ones, p, 99, 0), y3 = dropout(ones, p, 99, 1);
    int zeros = 0, other = 0, differ = 0;
    for (int i = 0; i < 20000; ++i) {
        if (y.data[i] == 0.0f)
            ++zeros;
        else if (y.data[i] != 1.0f / (1.0f - p))
            ++other;
        CHECK(y.data[i] == y2.data[i]);
        differ += y.data[i] != y3.data[i];
    }
    CHECK(other == 0);
    CHECK(zeros / 20000.0 == doctest::Approx(p).epsilon(0.05));
    CHECK(differ > 1000);  // another counter is another mask
    const Tensor same = dropout(x, 0.0f, 1, 2);
    CHECK(same.data == x.data);
}

// =====================================================================================
// normalisation and softmax
// =====================================================================================
TEST_CASE("op: layernorm") {
    Rng rng(9);
    Tensor x = randn({2, 5, 7}, rng), g = randn({7}, rng), b = randn({7}, rng);
    for (int c = 0; c < 7; ++c) x.data[7 + c] = 3.0f + 0.1f * x.data[7 + c];  // a row with a large mean
    {
        NoGrad ng;
        check_close(layernorm(x, g, b), reference::layernorm(x, g, b, 1e-5), 2e-5, 2e-4);
    }
    CHECK_GRADS({x, g, b}, [&] { return layernorm(x, g, b); });
}

TEST_CASE("op: layernorm's rows summed side by side give the bits of the one-row float loop") {
    Rng rng(41);
    const int R = 37, C = 96;  // blocks of 8 rows and a tail of 5
    Tensor x = randn({R, C}, rng, false), g = randn({C}, rng, false), b = randn({C}, rng, false);
    for (int c = 0; c < C; ++c) x.data[3 * C + c] = 100.0f + x.data[3 * C + c];  // a large mean: order matters
    NoGrad ng;
    const Tensor y = layernorm(x, g, b);
    int differ = 0;
    for (int r = 0; r < R; ++r) {
        const float* xr = x.data + r * C;
        float m = 0.0f, v = 0.0f;
        for (int c = 0; c < C; ++c) m += xr[c];
        m /= C;
        for (int c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
        const float s = 1.0f / std::sqrt(v / C + 1e-5f);
        for (int c = 0; c < C; ++c) differ += y.data[r * C + c] != (xr[c] - m) * s * g.data[c] + b.data[c];
    }
    CHECK(differ == 0);
}

TEST_CASE("op: softmax with masks") {
    Rng rng(10);
    const int B = 2, H = 3, Tq = 5, Tk = 6;
    Mask mask;
    std::vector<uint8_t> pad = {0, 0, 0, 0, 1, 1,   // batch 0: the last two keys are padding
                                1, 0, 0, 1, 0, 0};  // batch 1: keys 0 and 3
    Tensor logits = randn({B, H, Tq, Tk}, rng);
    SUBCASE("no mask") {}
    SUBCASE("causal") { mask.causal = true; }
    SUBCASE("causal with q_offset") {
        mask.causal = true;
        mask.q_offset = 1;
    }
    SUBCASE("key padding") {
        mask.key_pad = pad.data();
        mask.batch = B;
    }
    SUBCASE("causal and key padding") {
        mask.causal = true;
        mask.key_pad = pad.data();
        mask.batch = B;
    }
    SUBCASE("key padding broadcasts batch-1 logits to B") {
        logits = randn({1, H, Tq, Tk}, rng);
        mask.key_pad = pad.data();
        mask.batch = B;
    }
    {
        NoGrad ng;
        const Tensor y = softmax(logits, mask);
        CHECK(y.shape_str() == "(2, 3, 5, 6)");
        check_close(y, reference::softmax(logits, mask), 1e-6, 1e-5);
    }
    CHECK_GRADS({logits}, [&] { return softmax(logits, mask); });
    // Masked logits get exactly zero gradient (checked on logits batch 0, which every case
    // has; batch-1 logits feed both batches, so a key counts as masked if padded in both).
    const bool shared = logits.dim(0) == 1;
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < Tq; ++i)
            for (int j = 0; j < Tk; ++j) {
                const bool padded = mask.key_pad && pad[j] && (!shared || pad[Tk + j]);
                const bool masked = (mask.causal && j > i + mask.q_offset) || padded;
                if (masked) CHECK(logits.grad[((size_t)h * Tq + i) * Tk + j] == 0.0f);
            }
}

TEST_CASE("op: softmax, fully masked rows give zeros and zero gradient") {
    Rng rng(11);
    const int B = 2, H = 3, Tq = 4, Tk = 5;
    Tensor logits = randn({B, H, Tq, Tk}, rng);
    std::vector<uint8_t> pad = {0, 0, 1, 0, 1,  // batch 0: some keys
                                1, 1, 1, 1, 1}; // batch 1: every key is padding
    Mask mask;
    mask.causal = true;
    mask.q_offset = -1;  // query 0 sees no key at all
    mask.key_pad = pad.data();
    mask.batch = B;
    {
        NoGrad ng;
        const Tensor y = softmax(logits, mask);
        check_close(y, reference::softmax(logits, mask), 1e-6, 1e-5);
        for (int k = 0; k < H * Tq * Tk; ++k) CHECK(y.data[H * Tq * Tk + k] == 0.0f);
        for (int h = 0; h < H; ++h)
            for (int j = 0; j < Tk; ++j) CHECK(y.data[h * Tq * Tk + j] == 0.0f);
    }
    CHECK_GRADS({logits}, [&] { return softmax(logits, mask); });
    for (int k = 0; k < H * Tq * Tk; ++k) CHECK(logits.grad[H * Tq * Tk + k] == 0.0f);
}

TEST_CASE("op: local_conv, causal and centred, shared and per-position kernels, padding, decoding offsets") {
    Rng rng(24);
    int B = 2, Tk = 6, C = 6, H = 3, K = 3, pad_left = K - 1, q_offset = 0;
    bool per_position = false;
    std::vector<uint8_t> pad;
    SUBCASE("causal, shared kernel") {}
    SUBCASE("causal, per-position kernels") { per_position = true; }
    SUBCASE("centred, odd K") { K = 5, pad_left = 2, per_position = true; }
    SUBCASE("centred, even K, one head") { K = 4, pad_left = 1, H = 1; }
    SUBCASE("a kernel longer than the sequence") { K = 9, pad_left = 8; }
    SUBCASE("decoding: the last 2 of 6 positions are the queries") { q_offset = 4, per_position = true; }
    SUBCASE("key padding") {
        K = 5, pad_left = 2, per_position = true;
        pad = {0, 0, 0, 0, 1, 1,   // batch 0: the last two keys are padding
               1, 0, 0, 1, 0, 0};  // batch 1: keys 0 and 3
    }
    SUBCASE("large enough for the threaded loops and the shared kernel's partial sums") {
        B = 2, Tk = 64, C = 64, H = 4, K = 5;
    }
    SUBCASE("large, per-position kernels") { B = 2, Tk = 64, C = 64, H = 4, K = 5, per_position = true; }
    CAPTURE(K);
    CAPTURE(pad_left);
    CAPTURE(per_position);
    const int Tq = Tk - q_offset;
    const uint8_t* key_pad = pad.empty() ? nullptr : pad.data();
    Tensor x = randn({B, Tk, C}, rng);
    Tensor w = per_position ? randn({B, Tq, H, K}, rng) : randn({1, 1, H, K}, rng);
    {
        NoGrad ng;
        const Tensor y = local_conv(x, w, pad_left, q_offset, key_pad);
        CHECK(y.shape_str() == "(" + std::to_string(B) + ", " + std::to_string(Tq) + ", " + std::to_string(C) + ")");
        check_close(y, reference::local_conv(x, w, pad_left, q_offset, key_pad));
    }
    CHECK_GRADS({x, w}, [&] { return local_conv(x, w, pad_left, q_offset, key_pad); });
    // Padded keys get no gradient; neither do the keys no query reaches.
    for (int b = 0; b < B; ++b)
        for (int j = 0; j < Tk; ++j) {
            const bool padded = key_pad && key_pad[b * Tk + j];
            const bool reached = j + pad_left >= q_offset && j + pad_left - (K - 1) < Tk;
            if (padded || !reached)
                for (int c = 0; c < C; ++c) CHECK(x.grad[((size_t)b * Tk + j) * C + c] == 0.0f);
        }
}

TEST_CASE("op: local_conv rejects a kernel that is neither shared nor per position") {
    Rng rng(25);
    Tensor x = randn({2, 5, 6}, rng, false);
    CHECK_THROWS_WITH_AS(local_conv(x, randn({2, 1, 3, 3}, rng, false), 2), doctest::Contains("neither"), Error);
    CHECK_THROWS_WITH_AS(local_conv(x, randn({1, 1, 4, 3}, rng, false), 2), doctest::Contains("do not divide"), Error);
}

// =====================================================================================
// embeddings and loss
// =====================================================================================
TEST_CASE("op: embedding scatter-adds repeated ids") {
    Rng rng(12);
    const int V = 5, C = 4, B = 2, T = 5;
    Tensor table = randn({V, C}, rng);
    const std::vector<int32_t> ids = {1, 3, 1, 0, 4, 3, 3, 2, 1, 0};
    {
        NoGrad ng;
        const Tensor y = embedding(table, ids, B, T);
        CHECK(y.shape_str() == "(2, 5, 4)");
        for (int i = 0; i < B * T; ++i)
            for (int c = 0; c < C; ++c) CHECK(y.data[i * C + c] == table.data[ids[i] * C + c]);
    }
    CHECK_GRADS({table}, [&] { return embedding(table, ids, B, T); });
    // Through a plain sum every row's gradient counts its occurrences.
    std::memset(table.grad, 0, V * C * sizeof(float));
    backward(sum(embedding(table, ids, B, T)));
    const float count[V] = {2, 3, 1, 3, 1};
    for (int v = 0; v < V; ++v)
        for (int c = 0; c < C; ++c) CHECK(table.grad[v * C + c] == count[v]);
}

TEST_CASE("op: cross_entropy against a naive log-softmax, with ignore_index and label smoothing") {
    Rng rng(13);
    const int N = 6, V = 7, ignore = -1;
    Tensor logits = randn({N, V}, rng);
    logits.data[V + 2] = 30.0f;  // a large logit: the log-sum-exp must not overflow
    const std::vector<int32_t> targets = {3, ignore, 0, 6, ignore, 2};
    for (float ls : {0.0f, 0.1f}) {
        CAPTURE(ls);
        const reference::CrossEntropy want = reference::cross_entropy(logits, targets, ignore, ls);
        {
            NoGrad ng;
            LossStats stats;
            const Tensor loss = cross_entropy(logits, targets, ignore, ls, &stats);
            CHECK(loss.shape_str() == "(1)");
            CHECK(loss.data[0] == doctest::Approx(want.loss).epsilon(1e-5));
            CHECK(stats.sum_nll == doctest::Approx(want.sum_nll).epsilon(1e-5));
            CHECK(stats.count == 4);
        }
        CHECK_GRADS({logits}, [&] { return cross_entropy(logits, targets, ignore, ls); });
        for (int v = 0; v < V; ++v) {  // ignored rows get no gradient
            CHECK(logits.grad[1 * V + v] == 0.0f);
            CHECK(logits.grad[4 * V + v] == 0.0f);
        }
    }
    SUBCASE("every target ignored: zero loss, nothing recorded") {
        const Tensor loss = cross_entropy(logits, std::vector<int32_t>(N, ignore), ignore, 0.1f);
        CHECK(loss.data[0] == 0.0f);
        CHECK(tape_size() == 0);
    }
}

// =====================================================================================
// reshaping
// =====================================================================================
TEST_CASE("op: split_heads and merge_heads") {
    Rng rng(14);
    const int B = 2, T = 5, H = 3, D = 2;
    Tensor x = randn({B, T, H * D}, rng), z = randn({B, H, T, D}, rng);
    {
        NoGrad ng;
        const Tensor s = split_heads(x, H);
        CHECK(s.shape_str() == "(2, 3, 5, 2)");
        for (int b = 0; b < B; ++b)
            for (int t = 0; t < T; ++t)
                for (int h = 0; h < H; ++h)
                    for (int d = 0; d < D; ++d)
                        CHECK(s.data[((b * H + h) * T + t) * D + d] == x.data[(b * T + t) * H * D + h * D + d]);
        const Tensor m = merge_heads(s);
        CHECK(m.shape_str() == "(2, 5, 6)");
        for (int i = 0; i < B * T * H * D; ++i) CHECK(m.data[i] == x.data[i]);
    }
    CHECK_GRADS({x}, [&] { return split_heads(x, H); });
    CHECK_GRADS({z}, [&] { return merge_heads(z); });
}

TEST_CASE("op: slice_seq and concat_seq") {
    Rng rng(15);
    Tensor x = randn({2, 5, 7}, rng), a = randn({2, 3, 7}, rng), b = randn({2, 2, 7}, rng);
    {
        NoGrad ng;
        const Tensor s = slice_seq(x, 1, 4);
        CHECK(s.shape_str() == "(2, 3, 7)");
        for (int i = 0; i < 2; ++i)
            for (int k = 0; k < 21; ++k) CHECK(s.data[i * 21 + k] == x.data[i * 35 + 7 + k]);
        const Tensor c = concat_seq(a, b);
        CHECK(c.shape_str() == "(2, 5, 7)");
        for (int i = 0; i < 2; ++i) {
            for (int k = 0; k < 21; ++k) CHECK(c.data[i * 35 + k] == a.data[i * 21 + k]);
            for (int k = 0; k < 14; ++k) CHECK(c.data[i * 35 + 21 + k] == b.data[i * 14 + k]);
        }
    }
    CHECK_GRADS({x}, [&] { return slice_seq(x, 1, 4); });
    CHECK_GRADS({a, b}, [&] { return concat_seq(a, b); });
}

TEST_CASE("op: reshape is a view") {
    Rng rng(16);
    Tensor x = randn({2, 5, 7}, rng);
    const size_t before = tape_size();
    const Tensor v = reshape(x, {10, 7});
    CHECK(v.shape_str() == "(10, 7)");
    CHECK(v.data == x.data);
    CHECK(v.grad == x.grad);
    CHECK(tape_size() == before);
    CHECK_THROWS_AS(reshape(x, {3, 7}), Error);
    // Gradients flow through the view into the original.
    CHECK_GRADS({x}, [&] { return scale(reshape(x, {5, 14}), 3.0f); });
}

TEST_CASE("op: sum and mean") {
    Rng rng(17);
    Tensor x = randn({2, 5, 7}, rng);
    {
        NoGrad ng;
        double s = 0.0;
        for (int i = 0; i < 70; ++i) s += x.data[i];
        CHECK(sum(x).data[0] == doctest::Approx(s).epsilon(1e-6));
        CHECK(mean(x).data[0] == doctest::Approx(s / 70).epsilon(1e-6));
    }
    CHECK_GRADS({x}, [&] { return sum(x); });
    CHECK_GRADS({x}, [&] { return mean(x); });
}

// =====================================================================================
// synthetic-attention building blocks
// =====================================================================================
TEST_CASE("op: crop") {
    Rng rng(18);
    Tensor x = randn({3, 6, 7}, rng);
    {
        NoGrad ng;
        const Tensor y = crop(x, 4, 5);
        CHECK(y.shape_str() == "(1, 3, 4, 5)");
        for (int h = 0; h < 3; ++h)
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 5; ++j) CHECK(y.data[(h * 4 + i) * 5 + j] == x.data[(h * 6 + i) * 7 + j]);
    }
    CHECK_GRADS({x}, [&] { return crop(x, 4, 5); });
}

TEST_CASE("op: head_linear, per-head and shared weights, n < L") {
    Rng rng(19);
    const int B = 2, H = 3, T = 5, D = 4, L = 6, n = 5;
    Tensor x = randn({B, T, H * D}, rng);
    for (int Hw : {H, 1}) {
        CAPTURE(Hw);
        Tensor w = randn({Hw, D, L}, rng), b = randn({Hw, L}, rng);
        {
            NoGrad ng;
            const Tensor y = head_linear(x, H, w, b, n);
            CHECK(y.shape_str() == "(2, 3, 5, 5)");
            check_close(y, reference::head_linear(x, H, w, b, n));
        }
        CHECK_GRADS({x, w, b}, [&] { return head_linear(x, H, w, b, n); });
        for (int h = 0; h < Hw; ++h) {  // the unused column L-1 gets no gradient
            CHECK(b.grad[h * L + L - 1] == 0.0f);
            for (int d = 0; d < D; ++d) CHECK(w.grad[(h * D + d) * L + L - 1] == 0.0f);
        }
    }
}

TEST_CASE("op: fd_outer with n < a*b") {
    Rng rng(20);
    const int a = 3, bd = 4, n = 10;
    Tensor A = randn({2, 3, 5, a}, rng), Bf = randn({2, 3, 5, bd}, rng);
    {
        NoGrad ng;
        const Tensor y = fd_outer(A, Bf, n);
        CHECK(y.shape_str() == "(2, 3, 5, 10)");
        check_close(y, reference::fd_outer(A, Bf, n));
    }
    CHECK_GRADS({A, Bf}, [&] { return fd_outer(A, Bf, n); });
}

TEST_CASE("op: mix of 1, 2 and 3 components, with batch broadcast") {
    Rng rng(21);
    const int B = 2, H = 3, Tq = 4, Tk = 5;
    std::vector<Tensor> comps;
    SUBCASE("one component") { comps = {randn({B, H, Tq, Tk}, rng)}; }
    SUBCASE("batch-1 and batch-B components") { comps = {randn({1, H, Tq, Tk}, rng), randn({B, H, Tq, Tk}, rng)}; }
    SUBCASE("three components") {
        comps = {randn({B, H, Tq, Tk}, rng), randn({1, H, Tq, Tk}, rng), randn({B, H, Tq, Tk}, rng)};
    }
    const int C = (int)comps.size();
    CAPTURE(C);
    Tensor w = randn({H, C}, rng);
    {
        NoGrad ng;
        const Tensor y = mix(comps, w);
        CHECK(y.shape_str() == "(2, 3, 4, 5)");
        check_close(y, reference::mix(comps, w), 1e-6, 1e-5);
    }
    std::vector<Tensor> inputs = comps;
    inputs.push_back(w);
    CHECK_GRADS(inputs, [&] { return mix(comps, w); });
}

TEST_CASE("op: mix weights sum to one") {
    Rng rng(22);
    Tensor c = randn({2, 3, 4, 5}, rng, false), w = randn({3, 3}, rng, false);
    for (int i = 0; i < 9; ++i) w.data[i] *= 3.0f;
    const Tensor y = mix({c, c, c}, w);
    std::vector<double> want(c.data, c.data + c.numel());
    check_close(y, want, 1e-6, 1e-5);
}
