// The machinery under the ops: the scratch arena, NoGrad, gradient accumulation on the tape,
// the random number generators, and bit-for-bit reproducibility at a fixed thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "base/error.h"
#include "engine/ops.h"
#include "base/rng.h"
#include "engine/tensor.h"

using namespace synth;

namespace {

Tensor randn(const Shape& shape, Rng& rng, bool with_grad = true) {
    Tensor t = new_tensor(shape, with_grad);
    rng.fill_normal(t.data, t.numel(), 0.0f, 1.0f);
    return t;
}

// Restores OpenMP's thread count when the test ends, however it ends.
struct OmpThreads {
    explicit OmpThreads(int n) : prev(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~OmpThreads() { omp_set_num_threads(prev); }
    int prev;
};

// One training-like step through the layer-sized ops, big enough (65536-element activations)
// that the element and row kernels take their OpenMP paths:
//   x (4, 64, 64) -> linear (4, 64, 256) -> gelu -> layernorm -> view as logits (4, 4, 64, 64)
//   -> causal softmax -> bmm with v (4, 4, 64, 16) -> merge_heads (4, 64, 64)
//   -> cross_entropy over 256 rows of 64 classes, label smoothing 0.1, some rows ignored.
// Returns the loss, the attention probabilities and every input gradient, concatenated.
std::vector<float> composite_step() {
    Rng rng(2024);
    Tensor x = randn({4, 64, 64}, rng), w = randn({64, 256}, rng), b = randn({256}, rng);
    Tensor g = randn({256}, rng), beta = randn({256}, rng), v = randn({4, 4, 64, 16}, rng);
    for (int64_t i = 0; i < w.numel(); ++i) w.data[i] *= 0.125f;
    std::vector<int32_t> targets(256);
    for (int i = 0; i < 256; ++i) targets[i] = i % 17 == 0 ? -1 : (int32_t)rng.below(64);
    Mask causal;
    causal.causal = true;
    const Tensor h = layernorm(gelu(linear(x, w, b)), g, beta);
    const Tensor p = softmax(reshape(h, {4, 4, 64, 64}), causal);
    const Tensor o = merge_heads(bmm(p, v, Transpose::No, Transpose::No));
    const Tensor loss = cross_entropy(reshape(o, {256, 64}), targets, -1, 0.1f);
    backward(loss);
    std::vector<float> out(loss.data, loss.data + 1);
    out.insert(out.end(), p.data, p.data + p.numel());
    for (const Tensor* t : {&x, &w, &b, &g, &beta, &v}) out.insert(out.end(), t->grad, t->grad + t->numel());
    return out;
}

}  // namespace

// =====================================================================================
// arena
// =====================================================================================
TEST_CASE("engine: arena grows to the high-water mark, then stops allocating") {
    Arena a;
    CHECK(a.capacity_bytes() == 0);
    auto step = [&](size_t scale) {
        for (size_t n : {1000, 17, 4096, 3})
            CHECK(reinterpret_cast<uintptr_t>(a.alloc(n * scale)) % 64 == 0);
    };
    step(1);  // overflows the empty block
    a.reset();
    const size_t cap1 = a.capacity_bytes();
    CHECK(cap1 >= (1000 + 17 + 4096 + 3) * sizeof(float));
    step(1);  // fits
    a.reset();
    CHECK(a.capacity_bytes() == cap1);
    step(2);  // a longer batch overflows again
    a.reset();
    const size_t cap2 = a.capacity_bytes();
    CHECK(cap2 > cap1);
    step(1);  // a shorter one fits in the grown block
    a.reset();
    step(2);
    a.reset();
    CHECK(a.capacity_bytes() == cap2);

    float* p = a.alloc(64);  // reused memory: alloc_zero must still zero it
    for (int i = 0; i < 64; ++i) p[i] = 7.0f;
    a.reset();
    float* q = a.alloc_zero(64);
    CHECK(q == p);
    for (int i = 0; i < 64; ++i) CHECK(q[i] == 0.0f);
}

TEST_CASE("engine: after an overflowing step, the next identical step allocates nothing new") {
    // Whatever capacity earlier tests left behind, a step bigger than it must overflow.
    const size_t cap0 = scratch().capacity_bytes();
    const int big = (int)(cap0 / sizeof(float)) + 4096;
    auto step = [&] {
        Rng rng(5);
        Tensor x = randn({big}, rng);
        Tensor y = randn({2, 5, 7}, rng), w = randn({7, 3}, rng);
        backward(add(sum(x), sum(gelu(linear(y, w, Tensor{})))));
    };
    scratch().reset();
    step();
    scratch().reset();
    const size_t cap1 = scratch().capacity_bytes();
    CHECK(cap1 > cap0);
    for (int i = 0; i < 3; ++i) {
        step();
        scratch().reset();
        CHECK(scratch().capacity_bytes() == cap1);
    }
}

TEST_CASE("engine: gradient pages read zero when handed out, after release and after reset") {
    GradientPages g;
    for (size_t n : {size_t(1) << 19, (size_t(1) << 20) + 3}) {  // one huge page, three
        float* p = g.alloc(n);
        CHECK(reinterpret_cast<uintptr_t>(p) % 4096 == 0);  // no two gradients share a page
        auto nonzero = [&] {
            size_t k = 0;
            for (size_t i = 0; i < n; ++i) k += p[i] != 0.0f;
            return k;
        };
        CHECK(nonzero() == 0);
        for (size_t i = 0; i < n; ++i) p[i] = 1.0f;
        g.release(p, n);
        CHECK(nonzero() == 0);
        p[n - 1] = 2.0f;  // written again, then left for reset()
    }
    g.reset();  // the step overflowed: the regions are regrown
    const size_t cap = g.capacity_bytes();
    float* q = g.alloc(size_t(1) << 19);
    q[0] = 4.0f;
    g.reset();  // a step that fit: its pages are returned, not unmapped
    CHECK(g.capacity_bytes() == cap);
    CHECK(g.alloc(size_t(1) << 19) == q);
    CHECK(q[0] == 0.0f);
    float never = 1.0f;
    g.release(&never, 1);  // not from alloc(): ignored
    CHECK(never == 1.0f);
}

TEST_CASE("engine: backward returns each op's output gradient, so few are resident at once") {
    // A chain of 12 ops on 4 MB tensors: 48 MB of gradients in all, of which backward needs two
    // at a time (the output's, being read, and the input's, being written).
    constexpr int kOps = 12, n = 1 << 20;
    Rng rng(3);
    scratch().reset();
    Tensor x = randn({n}, rng);
    Tensor h = x;
    for (int i = 0; i < kOps; ++i) h = scale(h, 1.0f + 0.01f * (float)i);
    Tensor loss = sum(h);
    scratch().grads.measure_peak(true);
    backward(loss);
    scratch().grads.measure_peak(false);
    const size_t one = (size_t)n * sizeof(float);
    CHECK(scratch().grads.peak_resident_bytes() >= 2 * one);
    CHECK(scratch().grads.peak_resident_bytes() <= 3 * one);
    // The leaf x is no op's output: its gradient stays until reset, d loss / dx = prod of the scales.
    double expect = 1.0;
    for (int i = 0; i < kOps; ++i) expect *= (double)(1.0f + 0.01f * (float)i);
    CHECK(x.grad[0] == doctest::Approx(expect).epsilon(1e-5));
    CHECK(x.grad[n - 1] == doctest::Approx(expect).epsilon(1e-5));
    scratch().reset();
}

// =====================================================================================
// NoGrad and the tape
// =====================================================================================
TEST_CASE("engine: NoGrad ops produce no gradient and record nothing") {
    Rng rng(1);
    Tensor x = randn({2, 5, 8}, rng), w = randn({8, 8}, rng), g = randn({8}, rng), b = randn({8}, rng);
    Tensor mw = randn({2, 1}, rng);
    clear_tape();
    {
        NoGrad ng;
        CHECK_FALSE(grad_enabled());
        {
            NoGrad nested;
            CHECK_FALSE(grad_enabled());
        }
        CHECK_FALSE(grad_enabled());  // the inner scope restores the outer state, not "on"
        const Tensor h = layernorm(gelu(linear(x, w, b)), g, b);
        const Tensor s = split_heads(h, 2);
        const Tensor p = softmax(s, Mask{});
        const Tensor m = mix({p}, mw);
        const Tensor loss = cross_entropy(reshape(h, {10, 8}), std::vector<int32_t>(10, 1), -1, 0.1f);
        for (const Tensor* t : {&h, &s, &p, &m, &loss}) CHECK(t->grad == nullptr);
        CHECK(tape_size() == 0);
    }
    CHECK(grad_enabled());
    const Tensor y = gelu(x);
    CHECK(y.grad != nullptr);
    CHECK(tape_size() == 1);
    clear_tape();
    CHECK(tape_size() == 0);
}

TEST_CASE("engine: backward accumulates over every use of a tensor") {
    Rng rng(2);
    Tensor x = randn({2, 3}, rng);
    clear_tape();
    backward(sum(mul(x, x)));  // d/dx sum(x*x) = x + x
    CHECK(tape_size() == 0);   // backward consumes the tape
    for (int i = 0; i < 6; ++i) CHECK(x.grad[i] == 2.0f * x.data[i]);
    // A second backward adds to the grads it finds, it does not overwrite them.
    backward(sum(add(x, scale(x, 3.0f))));
    for (int i = 0; i < 6; ++i) CHECK(x.grad[i] == doctest::Approx(2.0f * x.data[i] + 4.0f));
    CHECK_THROWS_AS(backward(x), Error);  // not a scalar
}

TEST_CASE("engine: the trace lists the ops in forward order, then their backwards in reverse") {
    Rng rng(3);
    Tensor x = randn({2, 3}, rng), w = randn({3, 4}, rng);
    clear_tape();
    std::vector<std::string> lines;
    trace_next_step([&](const std::string& line) { lines.push_back(line); });
    backward(sum(gelu(linear(x, w, Tensor{}))));
    const std::vector<std::string> want = {
        "fwd    0 linear        (2, 3), (3, 4) -> (2, 4)",
        "fwd    1 gelu          (2, 4) -> (2, 4)",
        "fwd    2 sum           (2, 4) -> (1)",
        "bwd    2 sum           (2, 4) -> (1)",
        "bwd    1 gelu          (2, 4) -> (2, 4)",
        "bwd    0 linear        (2, 3), (3, 4) -> (2, 4)",
    };
    CHECK(lines == want);
    // Tracing covers one step: the next one is not traced.
    backward(sum(scale(x, 2.0f)));
    CHECK(lines.size() == want.size());
    // Ops under NoGrad record nothing, so they are not traced either.
    trace_next_step([&](const std::string& line) { lines.push_back(line); });
    {
        NoGrad ng;
        gelu(x);
    }
    CHECK(lines.size() == want.size());
    trace_next_step(nullptr);
}

// =====================================================================================
// random numbers
// =====================================================================================
TEST_CASE("engine: Rng matches the reference generators and is deterministic") {
    CHECK(splitmix64(0) == 0xe220a8397b1dcdafULL);
    // xoshiro256** from state {1, 2, 3, 4}: the reference outputs (as in rand_xoshiro's tests).
    Rng r;
    r.s[0] = 1, r.s[1] = 2, r.s[2] = 3, r.s[3] = 4;
    for (uint64_t want : {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL}) CHECK(r.next_u64() == want);

    Rng a(42), b(42), c(43);
    bool differs = false;
    for (int i = 0; i < 1000; ++i) {
        const uint64_t va = a.next_u64();
        CHECK(va == b.next_u64());
        differs = differs || va != c.next_u64();
    }
    CHECK(differs);
    Rng saved = a;  // the state is the whole generator: a checkpoint resumes the stream
    const uint64_t next = a.next_u64();
    CHECK(saved.next_u64() == next);
    a.reseed(42);
    Rng fresh(42);
    CHECK(a.next_u64() == fresh.next_u64());
}

TEST_CASE("engine: Rng distributions") {
    Rng rng(7);
    const int n = 100000;
    std::vector<float> x(n);
    rng.fill_normal(x.data(), n, 0.5f, 2.0f);
    double m = 0.0, v = 0.0;
    int beyond_2sd = 0;
    for (float f : x) m += f;
    m /= n;
    for (float f : x) {
        v += (f - m) * (f - m);
        beyond_2sd += std::fabs(f - 0.5f) > 4.0f;
    }
    const double sd = std::sqrt(v / n);
    CHECK(std::fabs(m - 0.5) < 0.03);    // standard error 0.006
    CHECK(std::fabs(sd - 2.0) < 0.04);   // standard error 0.0045
    CHECK(std::fabs(beyond_2sd / (double)n - 0.0455) < 0.005);  // a Gaussian's tails

    rng.fill_uniform(x.data(), n, -1.0f, 3.0f);
    double mu = 0.0;
    int outside = 0;
    for (float f : x) {
        outside += !(f >= -1.0f && f < 3.0f);
        mu += f;
    }
    CHECK(outside == 0);
    CHECK(std::fabs(mu / n - 1.0) < 0.03);
    std::vector<int> seen(7, 0);
    for (int i = 0; i < 700; ++i) {
        const uint64_t k = rng.below(7);
        REQUIRE(k < 7);
        ++seen[k];
    }
    for (int s : seen) CHECK(s > 50);
}

TEST_CASE("engine: hash_uniform is a pure function, so dropout ignores call order and threads") {
    const int n = 50000;
    std::vector<float> fwd(n), rev(n), par(n);
    for (int i = 0; i < n; ++i) fwd[i] = hash_uniform(11, 3, i);
    for (int i = n - 1; i >= 0; --i) rev[i] = hash_uniform(11, 3, i);
#pragma omp parallel for schedule(dynamic, 97) num_threads(2)
    for (int i = 0; i < n; ++i) par[i] = hash_uniform(11, 3, i);
    CHECK(std::memcmp(fwd.data(), rev.data(), n * sizeof(float)) == 0);
    CHECK(std::memcmp(fwd.data(), par.data(), n * sizeof(float)) == 0);
    double m = 0.0;
    int outside = 0, same_other_counter = 0, same_other_seed = 0;
    for (int i = 0; i < n; ++i) {
        outside += !(fwd[i] >= 0.0f && fwd[i] < 1.0f);
        m += fwd[i];
        same_other_counter += fwd[i] == hash_uniform(11, 4, i);
        same_other_seed += fwd[i] == hash_uniform(12, 3, i);
    }
    CHECK(outside == 0);
    CHECK(std::fabs(m / n - 0.5) < 0.01);
    CHECK(same_other_counter < 10);
    CHECK(same_other_seed < 10);

    // A dropout big enough to run in parallel gives the same mask on 1 and 2 threads.
    Rng rng(3);
    Tensor x = randn({n}, rng, false);
    std::vector<float> one, two;
    {
        OmpThreads t(1);
        const Tensor y = dropout(x, 0.25f, 5, 6);
        one.assign(y.data, y.data + n);
    }
    {
        OmpThreads t(2);
        const Tensor y = dropout(x, 0.25f, 5, 6);
        two.assign(y.data, y.data + n);
    }
    CHECK(std::memcmp(one.data(), two.data(), n * sizeof(float)) == 0);
}

// =====================================================================================
// reproducibility
// =====================================================================================
TEST_CASE("engine: same seed and thread count give bit-identical forward and backward") {
    clear_tape();
    std::vector<float> first, second, serial;
    {
        OmpThreads t(2);
        first = composite_step();
        second = composite_step();
    }
    REQUIRE(first.size() == second.size());
    CHECK(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
    CHECK(std::isfinite(first[0]));
    CHECK(first[0] > 0.0f);
    // Another thread count may round differently (different partial sums), but only slightly:
    // a work-splitting bug would show up here as a large difference.
    {
        OmpThreads t(1);
        serial = composite_step();
    }
    REQUIRE(serial.size() == first.size());
    size_t bad = 0;
    for (size_t i = 0; i < first.size(); ++i)
        if (!(std::fabs(serial[i] - first[i]) <= 1e-5f + 1e-3f * std::fabs(first[i]))) ++bad;
    CHECK(bad == 0);
}
