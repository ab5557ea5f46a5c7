// Tests that pin the Synthesizer definitions of docs/variants.md on the attention layer and the LM.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention/variant.h"
#include "engine/autograd.h"
#include "gradcheck.h"
#include "engine/optim.h"
#include "models/transformer.h"
#include "variant_list.h"

using namespace synth;

namespace {

const std::vector<std::string> kVariants = causal_variants_and_pairs();

// L = 6, or for the tests that loop over the registry (tested_lm), the length at which the
// variant's settings act (test_length: VariantInfo::test_len).
AttnConfig small_attn(const std::string& variant, int L = 6) {
    AttnConfig c;
    c.d_model = 8;
    c.heads = 2;
    c.max_len = L;
    c.settings.set("fr-rank", 3);
    c.variant = variant;
    return c;
}

LmConfig small_lm(const std::string& variant, int L = 6) {
    LmConfig c;
    c.vocab = 11;
    c.layers = 2;
    c.d_ff = 16;
    c.dropout = 0.0f;
    c.attn = small_attn(variant, L);
    return c;
}
LmConfig tested_lm(const std::string& variant) { return small_lm(variant, test_length(variant)); }

// Re-draws every parameter at unit-ish scale so gradients are far above the tolerances.
void scramble(ParamStore& store, uint64_t seed, float std = 0.5f) {
    Rng rng(seed);
    rng.fill_normal(store.data(), store.size(), 0.0f, std);
}

Tensor random_input(const Shape& s, uint64_t seed, bool grad) {
    Tensor t = new_tensor(s, grad);
    Rng rng(seed);
    rng.fill_normal(t.data, t.numel(), 0.0f, 1.0f);
    return t;
}

std::vector<float> copy_of(const Tensor& t) { return std::vector<float>(t.data, t.data + t.numel()); }

}  // namespace

TEST_CASE("lm: gradient check of one self-attention layer, every variant") {
    for (const std::string& v : kVariants) {
        for (bool causal : {false, true}) {
            CAPTURE(v);
            CAPTURE(causal);
            const int L = test_length(v);
            ParamStore store;
            auto attn = make_mixer(store, "a.", small_attn(v, L));
            store.finalize(1);
            scramble(store, 2);
            Tensor x = random_input({2, L - 1, 8}, 3, true);  // T < L: the sliced case
            std::vector<Tensor> inputs = {x};
            for (const Param& p : store.params())
                if (p.trainable) inputs.push_back(p.t);
            Mask m;
            m.causal = causal;
            StepContext ctx;
            GradCheckOptions opt;
            opt.eps = 3e-3f;  // D and FD have a ReLU inside; a small step rarely crosses its kink
            GradCheckResult r = gradcheck(inputs, [&] { return attn->forward(x, m, ctx, nullptr); }, opt);
            CHECK_MESSAGE(r.ok, r.summary());
        }
    }
}

TEST_CASE("lm: gradient check with a key-padding mask on synthetic logits") {
    for (std::string v : {"R", "D", "R+V"}) {
        CAPTURE(v);
        ParamStore store;
        auto attn = make_mixer(store, "a.", small_attn(v));
        store.finalize(1);
        scramble(store, 4);
        Tensor x = random_input({2, 4, 8}, 5, true);
        uint8_t pad[8] = {0, 0, 0, 1, 0, 0, 1, 1};
        Mask m;
        m.key_pad = pad;
        m.batch = 2;
        StepContext ctx;
        std::vector<Tensor> inputs = {x};
        for (const Param& p : store.params()) inputs.push_back(p.t);
        GradCheckOptions opt;
        opt.eps = 3e-3f;
        GradCheckResult r = gradcheck(inputs, [&] { return attn->forward(x, m, ctx, nullptr); }, opt);
        CHECK_MESSAGE(r.ok, r.summary());
    }
}

namespace {

// The causality check, on an LM of two sequences of T = L tokens: the summed change of the
// logits at positions <= t and at positions > t when every token after t changes, for each t.
// A causal model gives before == 0 at every t, and after > 0 (the change is visible later).
struct CausalityGaps {
    double before = 0, after = 0;
};
CausalityGaps causality_gaps(const LmConfig& cfg) {
    ParamStore store;
    TransformerLM lm(store, cfg);
    store.finalize(7);
    scramble(store, 8, 0.3f);
    NoGrad ng;
    StepContext ctx;
    const int T = cfg.attn.max_len;
    std::vector<int32_t> ids(2 * (size_t)T);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = (int32_t)((i + 1) % 11);
    const std::vector<float> a = copy_of(lm.forward(ids, 2, T, ctx));
    CausalityGaps g;
    for (int t = 0; t + 1 < T; ++t) {
        std::vector<int32_t> changed = ids;
        for (int b = 0; b < 2; ++b)
            for (int j = t + 1; j < T; ++j) changed[(size_t)b * T + j] = (ids[(size_t)b * T + j] + 5) % 11;
        const std::vector<float> c = copy_of(lm.forward(changed, 2, T, ctx));
        for (int b = 0; b < 2; ++b)
            for (int j = 0; j < T; ++j)
                for (int k = 0; k < 11; ++k) {
                    const size_t i = ((size_t)b * T + j) * 11 + k;
                    (j <= t ? g.before : g.after) += std::fabs(a[i] - c[i]);
                }
    }
    return g;
}

}  // namespace

TEST_CASE("lm: causality, changing tokens after t leaves outputs at positions <= t unchanged") {
    for (const std::string& v : kVariants) {
        CAPTURE(v);
        const CausalityGaps g = causality_gaps(tested_lm(v));
        CHECK(g.before == 0.0);
        CHECK(g.after > 1e-3);  // the change is visible later: the test can fail
    }
}

namespace {

// A windowed mixer written for this test, in two versions: position i sees the mean of x over
// its window of the last W positions, [i - W + 1, i]. The faulty one keeps the window as a ring
// of W slots (slot s holds position j, j = s mod W) filled with the whole sequence before reading
// it: while T <= W each slot holds one position and slot s is read by the queries i >= s, which is
// right; past W a slot holds the last position of its class, later than the queries that read it.
// So at the tests' default L = 6 < W = 8 the two agree and the fault is invisible; at the
// length the variant declares (test_len 12) the causality check must catch it.
class WindowMean : public SequenceMixer {
public:
    WindowMean(const AttnConfig& c, bool faulty) : W_(c.settings.integer("test-window")), faulty_(faulty) {}
    Tensor forward(const Tensor& x, Mask, StepContext&, MixerCache*) override {
        const int B = x.dim(0), T = x.dim(1), C = x.dim(2);
        Tensor y = new_tensor({B, T, C}, false);
        for (int b = 0; b < B; ++b)
            for (int i = 0; i < T; ++i) {
                float* out = y.data + ((size_t)b * T + i) * C;
                std::fill(out, out + C, 0.0f);
                int n = 0;
                for (int s = 0; s < W_; ++s) {
                    int j = -1;
                    if (faulty_) {
                        if (s <= i)  // "slots after the query are the future": true only while T <= W
                            for (int p = s; p < T; p += W_) j = p;
                    } else {
                        for (int p = s; p <= i; p += W_) j = p;  // the last position of the class up to i
                    }
                    if (j < 0) continue;
                    const float* in = x.data + ((size_t)b * T + j) * C;
                    for (int k = 0; k < C; ++k) out[k] += in[k];
                    ++n;
                }
                for (int k = 0; k < C; ++k) out[k] /= (float)n;
            }
        return y;
    }

private:
    int W_;
    bool faulty_;
};

VariantInfo window_mean_variant(const std::string& name, bool faulty) {
    VariantInfo v;
    v.name = name;
    v.description = "a test's windowed mean over the last --test-window positions";
    v.settings = {Setting::integer("test-window", 8, "window W", Setting::Bound::Positive)};
    v.sized_by_L = false;
    v.test_len = 12;  // more positions than the default window
    v.param_count = [](const AttnConfig&) { return (int64_t)0; };
    v.make_mixer = [faulty](ParamStore&, const std::string&, const AttnConfig& c) -> std::unique_ptr<SequenceMixer> {
        return std::make_unique<WindowMean>(c, faulty);
    };
    return v;
}

// Registers a variant for the scope of a test only (the other tests loop over the registry).
struct ScopedVariant {
    std::string name;
    explicit ScopedVariant(VariantInfo v) : name(v.name) { register_variant(std::move(v)); }
    ~ScopedVariant() { unregister_variant(name); }
};

}  // namespace

TEST_CASE("lm: the causality check catches a windowed variant whose mask goes wrong only past its window") {
    ScopedVariant good(window_mean_variant("TestWindow", false)), bad(window_mean_variant("TestWindowRing", true));
    CHECK(test_length("TestWindowRing") == 12);
    // At the length the variant declares: the right window passes, the ring's leaks the future.
    const CausalityGaps ok = causality_gaps(tested_lm("TestWindow"));
    CHECK(ok.before == 0.0);
    CHECK(ok.after > 1e-3);
    const CausalityGaps leak = causality_gaps(tested_lm("TestWindowRing"));
    CHECK(leak.before > 1e-3);  // the check fails for it
    // At L = 6, where the window of 8 never applies, the fault hides: why test_len exists.
    const CausalityGaps hidden = causality_gaps(small_lm("TestWindowRing"));
    CHECK(hidden.before == 0.0);
}

TEST_CASE("lm: R, Rfix and FR logits do not depend on token content; V and D do") {
    for (std::string v : {"R", "Rfix", "FR", "V", "D", "FD"}) {
        CAPTURE(v);
        ParamStore store;
        AttnConfig cfg = small_attn(v);
        auto src = variant_info(v).make_source(store, "s.", cfg);
        store.finalize(3);
        scramble(store, 9);
        NoGrad ng;
        Tensor x = random_input({1, 5, 8}, 10, false);
        std::vector<float> a = copy_of(src->logits(x, Mask{}, nullptr));
        // Swap the embeddings of tokens 1 and 3, and change token 4 altogether.
        for (int c = 0; c < 8; ++c) std::swap(x.data[1 * 8 + c], x.data[3 * 8 + c]);
        for (int c = 0; c < 8; ++c) x.data[4 * 8 + c] += 1.0f;
        std::vector<float> b = copy_of(src->logits(x, Mask{}, nullptr));
        bool same = a == b;
        CHECK(same == (v == "R" || v == "Rfix" || v == "FR"));
    }
}

TEST_CASE("lm: mixture weights are a softmax that sums to 1 and starts uniform") {
    ParamStore store;
    auto attn = make_mixer(store, "a.", small_attn("R+D+V"));
    store.finalize(1);
    for (int h = 0; h < 2; ++h)
        for (float a : attn->mixture_weights(h)) CHECK(a == doctest::Approx(1.0f / 3.0f));
    scramble(store, 12, 2.0f);
    for (int h = 0; h < 2; ++h) {
        std::vector<float> a = attn->mixture_weights(h);
        REQUIRE(a.size() == 3);
        CHECK(a[0] + a[1] + a[2] == doctest::Approx(1.0f).epsilon(1e-6));
        CHECK(a[0] != doctest::Approx(a[1]));
    }
}

TEST_CASE("lm: parameter counts equal the paper's formulas (docs/variants.md)") {
    // d = 16, H = 4, d_h = 4, L = 12, k = 8; FD's default a = 3 (divisor of 12 nearest 3.46), b = 4.
    AttnConfig c;
    c.d_model = 16;
    c.heads = 4;
    c.max_len = 12;
    c.settings.set("fr-rank", 8);
    const std::vector<std::pair<std::string, int64_t>> expected = {
        {"V", 2 * 16 * 16},                                 // 512
        {"D", 16 * 16 + 16 + 4 * (4 * 12 + 12)},            // 512
        {"R", 4 * 12 * 12},                                 // 576
        {"Rfix", 0},
        {"FR", 2 * 4 * 12 * 8},                             // 768
        {"FD", 16 * 16 + 16 + 4 * 4 * (3 + 4) + 4 * (3 + 4)},  // 412
        {"R+V", 576 + 512 + 4 * 2},
        {"D+V", 512 + 512 + 4 * 2},
        {"R+D", 576 + 512 + 4 * 2},
    };
    for (const auto& [v, n] : expected) {
        CAPTURE(v);
        c.variant = v;
        CHECK(paper_logit_params(c) == n);
        // The layer really has that many trainable logit parameters, plus W_v and W_o.
        ParamStore store;
        auto attn = make_mixer(store, "a.", c);
        store.finalize(1);
        CHECK(store.trainable_count() == n + 2 * 16 * 16);
        // And a whole LM matches lm_param_formula.
        LmConfig lc;
        lc.vocab = 13;
        lc.layers = 2;
        lc.d_ff = 32;
        lc.attn = c;
        ParamStore s2;
        TransformerLM lm(s2, lc);
        s2.finalize(1);
        CHECK(s2.trainable_count() == lm_param_formula(lc));
    }
    c.settings.set("share-w2", true);  // one W2 (d_h x L) and b2 (L) for all heads
    c.variant = "D";
    CHECK(paper_logit_params(c) == 16 * 16 + 16 + 4 * 12 + 12);
}

TEST_CASE("lm: a tiny model overfits one batch") {
    for (std::string v : {"V", "R", "D", "FR", "R+V"}) {
        CAPTURE(v);
        ParamStore store;
        LmConfig cfg = small_lm(v);
        TransformerLM lm(store, cfg);
        store.finalize(21);
        AdamW opt(store, AdamWConfig{0.9f, 0.98f, 1e-8f, 0.0f});
        std::vector<int32_t> x, y;
        Rng rng(5);
        for (int i = 0; i < 12; ++i) x.push_back((int32_t)rng.below(11)), y.push_back((int32_t)rng.below(11));
        float first = 0, last = 0;
        for (int step = 0; step < 150; ++step) {
            scratch().reset();
            store.zero_grad();
            StepContext ctx{true, 1, (uint64_t)step, 0};
            Tensor loss = cross_entropy(lm.forward(x, 2, 6, ctx), y, -1, 0.0f);
            backward(loss);
            opt.step(1e-2f);
            if (step == 0) first = loss.data[0];
            last = loss.data[0];
        }
        CHECK(first > 2.0f);  // ~ln 11 = 2.4 at initialisation
        CHECK(last < 0.3f);
    }
}

TEST_CASE("lm: a sequence longer than L is a clear error") {
    for (std::string v : {"R", "D", "FR", "FD", "R+V", "V"}) {
        CAPTURE(v);
        ParamStore store;
        TransformerLM lm(store, small_lm(v));
        store.finalize(1);
        StepContext ctx;
        std::vector<int32_t> ids(7, 1);  // L = 6
        CHECK_THROWS_WITH_AS(lm.forward(ids, 1, 7, ctx), doctest::Contains("longer than the"), Error);
        ParamStore s2;
        auto attn = make_mixer(s2, "a.", small_attn(v));
        s2.finalize(1);
        if (v != "V")
            CHECK_THROWS_WITH_AS(attn->forward(random_input({1, 7, 8}, 1, false), Mask{}, ctx, nullptr),
                                 doctest::Contains("longer than the maximum length L=6"), Error);
    }
    CHECK_THROWS_WITH_AS(parse_variant("R+"), doctest::Contains("empty component"), Error);
    CHECK_THROWS_WITH_AS(parse_variant("X"), doctest::Contains("unknown attention variant 'X'"), Error);
    CHECK_THROWS_WITH_AS(parse_variant("R+R"), doctest::Contains("repeats R"), Error);
}

TEST_CASE("lm: training updates R but never Rfix") {
    for (std::string v : {"R", "Rfix"}) {
        ParamStore store;
        TransformerLM lm(store, small_lm(v));
        store.finalize(3);
        const Param* r = store.find("block0.attn." + v + ".r");
        REQUIRE(r);
        CHECK(r->trainable == (v == "R"));
        std::vector<float> before = copy_of(r->t);
        AdamW opt(store, AdamWConfig{});
        std::vector<int32_t> x = {1, 2, 3, 4, 5, 6}, y = {2, 3, 4, 5, 6, 7};
        for (int step = 0; step < 3; ++step) {
            scratch().reset();
            store.zero_grad();
            StepContext ctx{true, 1, (uint64_t)step, 0};
            backward(cross_entropy(lm.forward(x, 1, 6, ctx), y, -1, 0.0f));
            opt.step(1e-2f);
        }
        CHECK((copy_of(r->t) == before) == (v == "Rfix"));
    }
}

TEST_CASE("lm: incremental decoding equals the full forward, every variant") {
    for (const std::string& v : kVariants) {
        CAPTURE(v);
        ParamStore store;
        const LmConfig cfg = tested_lm(v);
        const int T = cfg.attn.max_len;
        TransformerLM lm(store, cfg);
        store.finalize(5);
        scramble(store, 6, 0.3f);
        NoGrad ng;
        StepContext ctx;
        std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9};
        for (int t = 6; t < T; ++t) ids.push_back((ids[t - 6] * 7 + 2) % 11);
        std::vector<float> full = copy_of(lm.forward(ids, 1, T, ctx));
        std::vector<MixerCache> caches(2);
        double err = 0;
        // Two positions at once, then one at a time.
        std::vector<float> step = copy_of(lm.forward({3, 1}, 1, 2, ctx, &caches));
        for (size_t i = 0; i < step.size(); ++i) err = std::max(err, (double)std::fabs(step[i] - full[i]));
        for (int t = 2; t < T; ++t) {
            std::vector<float> s = copy_of(lm.forward({ids[t]}, 1, 1, ctx, &caches));
            for (int k = 0; k < 11; ++k) err = std::max(err, (double)std::fabs(s[k] - full[(size_t)t * 11 + k]));
        }
        CHECK(err < 1e-5);
    }
}

// At 150 tokens the full forward runs causal attention in 64-row blocks that skip the work
// above the diagonal; chunked prefill (70 tokens, then 66 more at q_offset 70) skips with
// an offset; the last 14 tokens, one at a time, skip nothing. All must give the same logits.
TEST_CASE("lm: causal block skipping, chunked prefill and one-token decoding agree at 150 tokens") {
    const int T = 150;
    for (const std::string& v : kVariants) {
        CAPTURE(v);
        LmConfig cfg = small_lm(v);
        cfg.attn.max_len = T;
        ParamStore store;
        TransformerLM lm(store, cfg);
        store.finalize(9);
        scramble(store, 10, 0.3f);
        NoGrad ng;
        StepContext ctx;
        Rng rng(11);
        std::vector<int32_t> ids(T);
        for (int32_t& id : ids) id = (int32_t)rng.below(cfg.vocab);
        const std::vector<float> full = copy_of(lm.forward(ids, 1, T, ctx));
        std::vector<MixerCache> caches(cfg.layers);
        double err = 0;
        int t0 = 0;
        for (int len : {70, 66, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}) {
            const std::vector<int32_t> chunk(ids.begin() + t0, ids.begin() + t0 + len);
            const std::vector<float> got = copy_of(lm.forward(chunk, 1, len, ctx, &caches));
            for (size_t i = 0; i < got.size(); ++i)
                err = std::max(err, (double)std::fabs(got[i] - full[(size_t)t0 * cfg.vocab + i]));
            t0 += len;
        }
        CHECK(t0 == T);
        CHECK(err < 1e-4);
    }
}
