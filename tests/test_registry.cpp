// The variant registry and the fixes that came with it: names, settings and counts derive from
// the registered variants; D/FD's per-head biases are not decayed; attention dropout draws
// one mask per sequence for batch-shared probabilities; R's Glorot fans are mesh-tensorflow's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "attention/variant.h"
#include "engine/autograd.h"
#include "base/error.h"
#include "gradcheck.h"
#include "base/rng.h"
#include "models/transformer.h"

using namespace synth;

namespace {

AttnConfig config(const std::string& variant) {
    AttnConfig c;
    c.d_model = 8;
    c.heads = 2;
    c.max_len = 6;
    c.variant = variant;
    return c;
}

}  // namespace

TEST_CASE("registry: every variant is listed once, with a description, a count and one factory") {
    REQUIRE(variants().size() >= 6);
    for (const VariantInfo& v : variants()) {
        CAPTURE(v.name);
        CHECK(!v.description.empty());
        CHECK(bool(v.make_source) != bool(v.make_mixer));
        CHECK(variant_info(v.name).name == v.name);
        CHECK(variant_names().find(v.name) != std::string::npos);
        // The registered count is what the layer really declares (W_v and W_o besides).
        AttnConfig c = config(v.name);
        ParamStore store;
        auto mixer = make_mixer(store, "a.", c);
        store.finalize(1);
        CHECK(store.trainable_count() == mixer_params(c));
    }
    CHECK_THROWS_WITH_AS(variant_info("Q"), doctest::Contains("known: "), Error);
}

TEST_CASE("registry: settings are flags of their owners; a setting no variant of the run reads is an error") {
    for (const Setting& s : all_settings()) {
        CAPTURE(s.name);
        CHECK(!setting_owners(s.name).empty());
    }
    auto given = [](const std::string& name) { return name == "share-w2"; };
    CHECK_NOTHROW(check_settings_used({"V", "D"}, given));
    CHECK_THROWS_WITH_AS(check_settings_used({"V", "FD"}, given), doctest::Contains("--share-w2 is a setting of D"),
                         Error);
    Settings s;
    s.set("r-init", std::string("bogus"));
    CHECK_THROWS_WITH_AS(check_settings(s), doctest::Contains("unknown --r-init 'bogus'"), Error);
    CHECK_THROWS_WITH_AS(s.set("r-init", 3), doctest::Contains("wrong type"), Error);
}

TEST_CASE("registry: weight decay applies to weights, never to biases, whatever their rank") {
    for (const char* v : {"D", "FD", "R+V"}) {
        CAPTURE(v);
        LmConfig c;
        c.vocab = 11;
        c.layers = 1;
        c.d_ff = 16;
        c.attn = config(v);
        ParamStore store;
        TransformerLM lm(store, c);
        for (const Param& p : store.params()) {
            CAPTURE(p.name);
            const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
            const bool bias = leaf[0] == 'b' || leaf == "g" || p.name.find(".mix.") != std::string::npos;
            CHECK(p.decay == !bias);
        }
    }
}

TEST_CASE("registry: attention dropout on batch-shared probabilities draws one mask per sequence") {
    for (const char* v : {"R", "Rfix", "FR"}) {
        CAPTURE(v);
        AttnConfig c = config(v);
        c.attn_dropout = 0.5f;
        ParamStore store;
        auto attn = make_mixer(store, "a.", c);
        store.finalize(3);
        Rng rng(4);
        rng.fill_normal(store.data(), store.size(), 0.0f, 0.5f);
        NoGrad ng;
        Tensor x = new_tensor({2, 5, 8}, false);  // two identical sequences
        rng.fill_normal(x.data, 40, 0.0f, 1.0f);
        std::copy(x.data, x.data + 40, x.data + 40);
        auto gap = [](const Tensor& t) {  // the largest difference between the two sequences' outputs
            float g = 0.0f;
            for (int i = 0; i < 40; ++i) g = std::max(g, std::fabs(t.data[i] - t.data[40 + i]));
            return g;
        };
        StepContext train{true, 9, 0, 0};
        CHECK(gap(attn->forward(x, Mask{}, train, nullptr)) > 1e-2f);  // (2, 5, 8)
        StepContext eval;
        CHECK(gap(attn->forward(x, Mask{}, eval, nullptr)) < 1e-5f);  // without dropout they agree
    }
}

TEST_CASE("registry: broadcast_batch's gradient sums the copies") {
    Rng rng(5);
    Tensor x = new_tensor({1, 2, 3, 4}, true);
    rng.fill_normal(x.data, x.numel(), 0.0f, 1.0f);
    Tensor w = new_tensor({3, 2, 3, 4}, false);
    rng.fill_normal(w.data, w.numel(), 0.0f, 1.0f);
    GradCheckResult r = gradcheck({x}, [&] { return sum(mul(broadcast_batch(x, 3), w)); });
    CHECK_MESSAGE(r.ok, r.summary());
    CHECK(r.checked > 0);
}

TEST_CASE("registry: --r-init=glorot draws R with mesh-tensorflow's fans (fan_in = H L, fan_out = L L)") {
    AttnConfig c = config("R");
    c.heads = 4;
    c.max_len = 16;
    c.d_model = 16;
    c.settings.set("r-init", std::string("glorot"));
    ParamStore store;
    auto attn = make_mixer(store, "a.", c);
    store.finalize(2);
    const Param* r = store.find("a.R.r");
    REQUIRE(r);
    const float limit = std::sqrt(6.0f / (4 * 16 + 16 * 16));  // 0.137; the (L, L) fans would give 0.433
    const int64_t n = r->t.numel();
    const float largest = std::fabs(*std::max_element(r->t.data, r->t.data + n, [](float a, float b) {
        return std::fabs(a) < std::fabs(b);
    }));
    CHECK(largest <= limit);
    CHECK(largest > 0.95f * limit);
}

TEST_CASE("registry: --r-init=unit draws the random synthesizers from N(0, 1)") {
    for (std::string v : {"R", "Rfix"}) {
        CAPTURE(v);
        AttnConfig c = config(v);
        c.max_len = 16;
        c.settings.set("r-init", std::string("unit"));
        ParamStore store;
        auto attn = make_mixer(store, "a.", c);
        store.finalize(3);
        const Param* r = store.find("a." + v + ".r");
        REQUIRE(r);
        double ss = 0;
        for (int64_t i = 0; i < r->t.numel(); ++i) ss += (double)r->t.data[i] * r->t.data[i];
        CHECK(std::sqrt(ss / r->t.numel()) == doctest::Approx(1.0).epsilon(0.1));  // N(0, 0.02) would give 0.02
    }
}
