// The profiler (engine/profile.h): what a profiled step records, and that it records nothing when
// off. No absolute timings are asserted: only counts, and sums that cannot exceed the wall time
// around them.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/rng.h"
#include "engine/autograd.h"
#include "engine/optim.h"
#include "engine/profile.h"
#include "models/transformer.h"
#include "train/trainer.h"

using namespace synth;

namespace {

// Profiling on for one test, off and cleared afterwards however it ends.
struct Profiling {
    Profiling() {
        profile::reset();
        profile::g_on = true;
    }
    ~Profiling() {
        profile::g_on = false;
        profile::reset();
    }
};

struct TinyLm {
    ParamStore store;
    TransformerLM model;
    std::vector<int32_t> x, y;
    static LmConfig config(const std::string& variant) {
        LmConfig c;
        c.vocab = 11, c.layers = 1, c.d_ff = 32, c.dropout = 0.0f;
        c.attn.d_model = 16, c.attn.heads = 2, c.attn.max_len = 8, c.attn.variant = variant, c.attn.causal = true;
        return c;
    }
    explicit TinyLm(const std::string& variant) : model(store, config(variant)), x(2 * 8), y(2 * 8) {
        store.finalize(7);
        Rng rng(3);
        for (size_t i = 0; i < x.size(); ++i) x[i] = (int32_t)rng.below(11), y[i] = (int32_t)rng.below(11);
    }
    Tensor loss(StepContext& ctx) { return cross_entropy(model.forward(x, 2, 8, ctx), y, -1, 0.0f); }
};

}  // namespace

TEST_CASE("profile: profiled training steps record their op kinds, inside the wall time around them") {
    TinyLm lm("R+V");
    AdamW opt(lm.store, AdamWConfig{});
    Profiling on;
    // The first steps are warm-up until the activation arena keeps its size (at most two).
    const double t0 = now_seconds();
    for (int step = 0; step < 3; ++step) {
        StepContext ctx{true, 1, (uint64_t)step, 0};
        train_step(lm.store, opt, [&] { return lm.loss(ctx); }, 1e-3f, 1.0f);
    }
    const double wall = now_seconds() - t0;
    const int64_t steps = profile::totals("cross_entropy", true).fwd_calls;
    REQUIRE(steps >= 1);

    double ops = 0;
    for (const char* op : {"embedding", "linear", "layernorm", "head_scores", "crop", "mix", "softmax", "head_mix",
                           "linear_relu", "add", "cross_entropy"}) {
        CAPTURE(op);
        const profile::OpTotals t = profile::totals(op, true);
        CHECK(t.fwd_calls > 0);
        CHECK(t.bwd_calls > 0);
        CHECK(t.bytes > 0);
        CHECK(t.fwd_s >= 0);
        CHECK(t.bwd_s >= 0);
        ops += t.fwd_s + t.bwd_s;
    }
    // Matrix products are timed inside the op that runs them, with their FLOPs.
    for (const char* op : {"linear", "head_scores", "head_mix"}) {
        const profile::OpTotals t = profile::totals(op, true);
        CHECK(t.gemm_flops > 0);
        CHECK(t.gemm_s <= t.fwd_s + t.bwd_s);
    }
    CHECK(profile::totals("linear", true).fwd_calls == 6 * steps);  // W_q, W_k, W_v, W_o, the FFN's second half, the LM head
    CHECK(profile::totals("linear", false).fwd_calls == 0);  // nothing ran without gradients
    CHECK(ops <= wall);
    CHECK(profile::phase_seconds("forward") + profile::phase_seconds("backward") <= profile::phase_seconds("step"));
    CHECK(profile::phase_seconds("step") <= wall);

    // An inference pass (an outermost NoGrad) goes to the other table.
    {
        NoGrad ng;
        StepContext eval;
        lm.loss(eval);
    }
    CHECK(profile::totals("softmax", false).fwd_calls == 1);
    CHECK(profile::totals("softmax", true).fwd_calls == steps);

    // The report: a table, then one JSON line, after which the profile starts afresh.
    std::FILE* f = std::tmpfile();
    profile::report(f, "tiny");
    std::rewind(f);
    std::string text;
    for (int c; (c = std::fgetc(f)) != EOF;) text += (char)c;
    std::fclose(f);
    CHECK(text.find("profile, training: " + std::to_string(steps) + " steps") != std::string::npos);
    CHECK(text.find("profile, inference: 1 passes") != std::string::npos);
    CHECK(text.find("{\"profile\":{\"title\":\"tiny\"") != std::string::npos);
    CHECK(text.find("\"op\":\"head_mix\"") != std::string::npos);
    CHECK(profile::totals("linear", true).fwd_calls == 0);
}

TEST_CASE("profile: off, nothing is recorded") {
    profile::reset();
    REQUIRE_FALSE(profile::on());
    TinyLm lm("V");
    AdamW opt(lm.store, AdamWConfig{});
    StepContext ctx{true, 1, 0, 0};
    train_step(lm.store, opt, [&] { return lm.loss(ctx); }, 1e-3f, 1.0f);
    CHECK(profile::totals("linear", true).fwd_calls == 0);
    CHECK(profile::phase_seconds("step") == 0);
}
