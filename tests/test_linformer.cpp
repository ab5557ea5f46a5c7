// Linformer (src/attention/linformer.cpp): gradients, padding, its relation to dot-product
// attention, its parameter count and its refusal in a decoder.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "attention/variant.h"
#include "engine/autograd.h"
#include "error_of.h"
#include "gradcheck.h"
#include "models/transformer.h"

using namespace synth;
using synth_test::error_of;

namespace {

AttnConfig linformer(const std::string& share, int k = 3) {
    AttnConfig c;
    c.d_model = 8;
    c.heads = 2;
    c.max_len = 6;
    c.variant = "Linformer";
    c.settings.set("linformer-k", k);
    c.settings.set("linformer-share", share);
    return c;
}

Tensor random_input(const Shape& s, uint64_t seed, bool grad) {
    Tensor t = new_tensor(s, grad);
    Rng rng(seed);
    rng.fill_normal(t.data, t.numel(), 0.0f, 1.0f);
    return t;
}

// The tensor of parameter `name` (nullptr when the store has none).
const Tensor* param(const ParamStore& store, const std::string& name) {
    const Param* p = store.find(name);
    return p ? &p->t : nullptr;
}

const uint8_t kPad[10] = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};  // (B=2, T=5): sequence 0 has two padding keys

}  // namespace

TEST_CASE("linformer: gradient check for every sharing, with and without padding, T < L") {
    for (std::string share : {"none", "headwise", "kv"}) {
        for (bool padded : {false, true}) {
            CAPTURE(share);
            CAPTURE(padded);
            ParamStore store;
            auto mixer = make_mixer(store, "a.", linformer(share));
            store.finalize(1);
            Rng rng(2);
            rng.fill_normal(store.data(), store.size(), 0.0f, 0.5f);
            Tensor x = random_input({2, 5, 8}, 3, true);
            std::vector<Tensor> inputs = {x};
            for (const Param& p : store.params()) inputs.push_back(p.t);
            Mask m;
            if (padded) m.key_pad = kPad, m.batch = 2;
            StepContext ctx;
            GradCheckResult r = gradcheck(inputs, [&] { return mixer->forward(x, m, ctx, nullptr); });
            CHECK_MESSAGE(r.ok, r.summary());
        }
    }
}

TEST_CASE("linformer: padding keys add nothing: changing them leaves the real positions' outputs unchanged") {
    ParamStore store;
    auto mixer = make_mixer(store, "a.", linformer("headwise"));
    store.finalize(4);
    NoGrad ng;
    Tensor x = random_input({2, 5, 8}, 5, false);
    Mask m;
    m.key_pad = kPad;
    m.batch = 2;
    StepContext ctx;
    Tensor a = mixer->forward(x, m, ctx, nullptr);
    std::vector<float> before(a.data, a.data + a.numel());
    for (int t : {3, 4})
        for (int c = 0; c < 8; ++c) x.data[t * 8 + c] += 3.0f;  // sequence 0's padding positions
    Tensor b = mixer->forward(x, m, ctx, nullptr);
    for (int t = 0; t < 3; ++t)  // sequence 0's real positions; sequence 1 is untouched too
        for (int c = 0; c < 8; ++c) CHECK(b.data[t * 8 + c] == before[t * 8 + c]);
    for (int i = 40; i < 80; ++i) CHECK(b.data[i] == before[i]);
    // Without the mask the same change does reach them: the test can fail.
    Tensor c = mixer->forward(x, Mask{}, ctx, nullptr);
    double diff = 0;
    for (int i = 0; i < 24; ++i) diff += std::fabs(c.data[i] - before[i]);
    CHECK(diff > 1e-3);
}

TEST_CASE("linformer: with k = T and E = F = I it is dot-product attention (V)") {
    // The projections then keep every key and value as it is, so the mixer must equal
    // SynthesizerAttention over V with the same W_q, W_k, W_v, W_o.
    for (std::string share : {"none", "headwise", "kv"}) {
        CAPTURE(share);
        AttnConfig lc = linformer(share, /*k=*/6);
        ParamStore ls, vs;
        auto lin = make_mixer(ls, "a.", lc);
        AttnConfig vc = lc;
        vc.variant = "V";
        auto v = make_mixer(vs, "a.", vc);
        ls.finalize(6);
        vs.finalize(7);
        for (std::string name : {"V.w_q", "V.w_k", "w_v", "w_o"}) {
            const std::string theirs = name.rfind("V.", 0) == 0 ? "Linformer." + name.substr(2) : name;
            const Tensor *from = param(vs, "a." + name), *to = param(ls, "a." + theirs);
            REQUIRE((from && to));
            std::memcpy(to->data, from->data, from->numel() * sizeof(float));
        }
        for (std::string proj : {"Linformer.e", "Linformer.f"}) {
            const Tensor* t = param(ls, "a." + proj);
            if (!t) continue;  // kv: F is E
            std::memset(t->data, 0, t->numel() * sizeof(float));
            for (int h = 0; h < t->dim(0); ++h)
                for (int i = 0; i < 6; ++i) t->data[((int64_t)h * 6 + i) * 6 + i] = 1.0f;
        }
        NoGrad ng;
        Tensor x = random_input({2, 6, 8}, 8, false);
        StepContext ctx;
        Tensor a = lin->forward(x, Mask{}, ctx, nullptr), b = v->forward(x, Mask{}, ctx, nullptr);
        for (int64_t i = 0; i < a.numel(); ++i) CHECK(a.data[i] == doctest::Approx(b.data[i]).epsilon(1e-5));
    }
}

TEST_CASE("linformer: the registry's parameter count is the layer's") {
    for (std::string share : {"none", "headwise", "kv"}) {
        for (int k : {2, 5}) {
            CAPTURE(share);
            CAPTURE(k);
            const AttnConfig c = linformer(share, k);
            ParamStore store;
            make_mixer(store, "a.", c);
            CHECK(store.trainable_count() == mixer_params(c));
        }
    }
    const int64_t d = 8, L = 6, k = 3;
    CHECK(mixer_params(linformer("none", 3)) == 4 * d * d + 2 * 2 * k * L);
    CHECK(mixer_params(linformer("kv", 3)) == 4 * d * d + k * L);
}

TEST_CASE("linformer: refused in a decoder, longer than L, or mixed") {
    LmConfig lm;
    lm.vocab = 5;
    lm.layers = 1;
    lm.attn = linformer("headwise");
    ParamStore store;
    CHECK(error_of([&] { TransformerLM m(store, lm); }) == doctest::Contains("Linformer is encoder-only"));
    CHECK(!causal_ok("Linformer"));
    CHECK(causal_ok("R+V"));
    CHECK(error_of([] { parse_variant("Linformer+V"); }) == doctest::Contains("cannot be mixed"));

    ParamStore s2;
    auto mixer = make_mixer(s2, "a.", linformer("headwise"));
    s2.finalize(1);
    NoGrad ng;
    StepContext ctx;
    Tensor x = random_input({1, 7, 8}, 9, false);
    CHECK(error_of([&] { mixer->forward(x, Mask{}, ctx, nullptr); }) ==
          doctest::Contains("longer than the maximum length L=6"));
}
