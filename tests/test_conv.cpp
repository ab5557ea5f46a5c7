// The convolution baselines LightConv and DynamicConv (Wu et al. 2019; attention/conv_layer.h,
// docs/variants.md): their definition against a loop written out here, gradients, the causal
// and centred windows, key padding, incremental decoding, DropConnect, the per-layer kernel
// sizes and the parameter counts. The registry-wide tests (tests/test_lm.cpp, test_mt.cpp,
// test_parity.cpp) cover them too.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "attention/variant.h"
#include "engine/autograd.h"
#include "base/error.h"
#include "gradcheck.h"
#include "base/rng.h"
#include "models/transformer.h"

using namespace synth;

namespace {

const std::vector<std::string> kConvs = {"LightConv", "DynamicConv"};

AttnConfig conv_config(const std::string& variant, bool causal, const std::string& kernels) {
    AttnConfig c;
    c.d_model = 8;
    c.heads = 2;
    c.max_len = 4;  // not sized by L: the tests run longer sequences
    c.variant = variant;
    c.causal = causal;
    c.settings.set("conv-kernels", kernels);
    return c;
}

// A mixer with its parameters drawn at unit-ish scale, so every tap and gate matters.
struct Built {
    std::unique_ptr<ParamStore> store = std::make_unique<ParamStore>();
    std::unique_ptr<SequenceMixer> mixer;
    const float* param(const std::string& leaf) const { return store->find("a." + leaf)->t.data; }
};

Built build(const AttnConfig& c, uint64_t seed = 3) {
    Built b;
    b.mixer = make_mixer(*b.store, "a.", c);
    b.store->finalize(seed);
    Rng rng(seed + 1);
    rng.fill_normal(b.store->data(), b.store->size(), 0.0f, 0.5f);
    return b;
}

Tensor random_input(const Shape& s, uint64_t seed, bool grad = false) {
    Tensor t = new_tensor(s, grad);
    Rng rng(seed);
    rng.fill_normal(t.data, t.numel(), 0.0f, 1.0f);
    return t;
}

std::vector<float> run(SequenceMixer& m, const Tensor& x, const Mask& mask = Mask{}) {
    NoGrad ng;
    StepContext ctx;
    const Tensor y = m.forward(x, mask, ctx, nullptr);
    return std::vector<float>(y.data, y.data + y.numel());
}

// The layer written out in double for one sequence x (T, d): u = GLU(x W_in + b_in), the taps
// softmax(kernel_h) (LightConv) or softmax(u_i W_k)_h (DynamicConv), the window
// i - P .. i - P + K - 1 with zeros outside, then W_out and b_out.
std::vector<double> by_hand(const Built& b, const std::string& variant, const float* x, int T, int d, int H, int K,
                            int P) {
    const float *w_in = b.param(variant + ".w_in"), *b_in = b.param(variant + ".b_in");
    const float *w_out = b.param(variant + ".w_out"), *b_out = b.param(variant + ".b_out");
    std::vector<double> u((size_t)T * d), taps((size_t)T * H * K), y((size_t)T * d, 0.0), out((size_t)T * d);
    for (int t = 0; t < T; ++t)
        for (int c = 0; c < d; ++c) {
            double a = b_in[c], g = b_in[d + c];
            for (int e = 0; e < d; ++e) a += (double)x[t * d + e] * w_in[e * 2 * d + c], g += (double)x[t * d + e] * w_in[e * 2 * d + d + c];
            u[t * d + c] = a / (1.0 + std::exp(-g));
        }
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h) {
            double s = 0.0;
            for (int k = 0; k < K; ++k) {
                double logit = 0.0;
                if (variant == "LightConv") {
                    logit = b.param("LightConv.kernel")[h * K + k];
                } else {
                    for (int e = 0; e < d; ++e) logit += u[t * d + e] * b.param("DynamicConv.w_kernel")[e * H * K + h * K + k];
                }
                s += taps[(t * H + h) * K + k] = std::exp(logit);
            }
            for (int k = 0; k < K; ++k) taps[(t * H + h) * K + k] /= s;
        }
    for (int i = 0; i < T; ++i)
        for (int k = 0; k < K; ++k) {
            const int j = i - P + k;
            if (j < 0 || j >= T) continue;
            for (int c = 0; c < d; ++c) y[i * d + c] += taps[(i * H + c / (d / H)) * K + k] * u[j * d + c];
        }
    for (int t = 0; t < T; ++t)
        for (int c = 0; c < d; ++c) {
            double s = b_out[c];
            for (int e = 0; e < d; ++e) s += y[t * d + e] * w_out[e * d + c];
            out[t * d + c] = s;
        }
    return out;
}

// reaches[i][j]: whether output i changes when input j does (one sequence of T positions).
std::vector<std::vector<bool>> reaches(SequenceMixer& m, int T, int d) {
    Tensor x = random_input({1, T, d}, 7);
    const std::vector<float> base = run(m, x);
    std::vector<std::vector<bool>> r(T, std::vector<bool>(T));
    for (int j = 0; j < T; ++j) {
        const std::vector<float> saved(x.data + j * d, x.data + (j + 1) * d);
        for (int c = 0; c < d; ++c) x.data[j * d + c] += 0.5f;
        const std::vector<float> y = run(m, x);
        std::copy(saved.begin(), saved.end(), x.data + j * d);  // exactly: x + 0.5 - 0.5 may round
        for (int i = 0; i < T; ++i) {
            double diff = 0;
            for (int c = 0; c < d; ++c) diff += std::fabs(y[i * d + c] - base[i * d + c]);
            r[i][j] = diff > 0.0;
        }
    }
    return r;
}

}  // namespace

TEST_CASE("conv: LightConv and DynamicConv compute their definition, causal and centred, odd and even K") {
    for (const std::string& v : kConvs)
        for (bool causal : {true, false})
            for (int K : {3, 4}) {
                CAPTURE(v);
                CAPTURE(causal);
                CAPTURE(K);
                const AttnConfig c = conv_config(v, causal, std::to_string(K));
                Built b = build(c);
                const int T = 7, d = c.d_model;
                Tensor x = random_input({2, T, d}, 5);
                const std::vector<float> got = run(*b.mixer, x);
                for (int s = 0; s < 2; ++s) {
                    const std::vector<double> want =
                        by_hand(b, v, x.data + s * T * d, T, d, c.heads, K, causal ? K - 1 : (K - 1) / 2);
                    double err = 0;
                    for (int i = 0; i < T * d; ++i) err = std::max(err, std::fabs(got[s * T * d + i] - want[i]));
                    CHECK(err < 1e-5);
                }
            }
}

TEST_CASE("conv: gradient check of the whole mixer, causal, centred, key padding and DropConnect") {
    for (const std::string& v : kConvs) {
        for (int mode = 0; mode < 4; ++mode) {
            CAPTURE(v);
            CAPTURE(mode);  // 0 causal, 1 centred, 2 centred with key padding, 3 causal with DropConnect
            AttnConfig c = conv_config(v, mode == 0 || mode == 3, "3,5");
            c.layer = 1;  // K = 5
            c.attn_dropout = mode == 3 ? 0.3f : 0.0f;
            Built b = build(c);
            Tensor x = random_input({2, 6, 8}, 9, true);
            std::vector<Tensor> inputs = {x};
            for (const Param& p : b.store->params()) inputs.push_back(p.t);
            uint8_t pad[12] = {0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0};
            Mask m;
            if (mode == 2) m.key_pad = pad, m.batch = 2;
            StepContext ctx0;
            ctx0.train = mode == 3;
            ctx0.seed = 11;
            // Each forward starts from the same context: the same DropConnect mask every time.
            GradCheckResult r = gradcheck(inputs, [&] {
                StepContext ctx = ctx0;
                return b.mixer->forward(x, m, ctx, nullptr);
            });
            CHECK_MESSAGE(r.ok, r.summary());
        }
    }
}

TEST_CASE("conv: the window, causal keys i-K+1 .. i and centred i-(K-1)/2 .. i+K/2, longer than L") {
    for (const std::string& v : kConvs)
        for (bool causal : {true, false})
            for (int K : {1, 3, 4, 5}) {
                CAPTURE(v);
                CAPTURE(causal);
                CAPTURE(K);
                const AttnConfig c = conv_config(v, causal, std::to_string(K));
                Built b = build(c);
                const int T = 9, P = causal ? K - 1 : (K - 1) / 2;
                const auto r = reaches(*b.mixer, T, c.d_model);
                for (int i = 0; i < T; ++i)
                    for (int j = 0; j < T; ++j) {
                        CAPTURE(i);
                        CAPTURE(j);
                        CHECK(r[i][j] == (j >= i - P && j <= i - P + K - 1));
                    }
            }
}

TEST_CASE("conv: a causal mask makes the window causal even on a layer built as an encoder's") {
    for (const std::string& v : kConvs) {
        CAPTURE(v);
        Built b = build(conv_config(v, false, "3"));
        Tensor x = random_input({1, 5, 8}, 13);
        Mask causal;
        causal.causal = true;
        const std::vector<float> a = run(*b.mixer, x, causal);
        for (int c = 0; c < 8; ++c) x.data[4 * 8 + c] += 1.0f;  // the last position
        const std::vector<float> z = run(*b.mixer, x, causal);
        for (int i = 0; i < 4 * 8; ++i) CHECK(a[i] == z[i]);
        double last = 0;
        for (int i = 4 * 8; i < 5 * 8; ++i) last += std::fabs(a[i] - z[i]);
        CHECK(last > 1e-3);
    }
}

TEST_CASE("conv: padded inputs reach no output; without the mask they would") {
    for (const std::string& v : kConvs)
        for (bool causal : {true, false}) {
            CAPTURE(v);
            CAPTURE(causal);
            Built b = build(conv_config(v, causal, "5"));
            const int B = 2, T = 6, d = 8;
            uint8_t pad[12] = {0, 0, 1, 0, 0, 1,   // sequence 0: positions 2 and 5
                               0, 0, 0, 0, 1, 1};  // sequence 1: the last two
            Mask m;
            m.key_pad = pad;
            m.batch = B;
            Tensor x = random_input({B, T, d}, 15);
            const std::vector<float> a = run(*b.mixer, x, m), a_unmasked = run(*b.mixer, x);
            for (int p = 0; p < B * T; ++p)
                if (pad[p])
                    for (int c = 0; c < d; ++c) x.data[p * d + c] += 1.0f;
            const std::vector<float> z = run(*b.mixer, x, m), z_unmasked = run(*b.mixer, x);
            double seen = 0, seen_unmasked = 0;
            for (int p = 0; p < B * T; ++p)
                if (!pad[p])
                    for (int c = 0; c < d; ++c) {
                        seen += std::fabs(a[p * d + c] - z[p * d + c]);
                        seen_unmasked += std::fabs(a_unmasked[p * d + c] - z_unmasked[p * d + c]);
                    }
            CHECK(seen == 0.0);
            CHECK(seen_unmasked > 1e-3);
        }
}

TEST_CASE("conv: incremental decoding equals the full forward; the cache keeps the last K-1 GLU outputs") {
    for (const std::string& v : kConvs)
        for (int K : {1, 3, 5}) {
            CAPTURE(v);
            CAPTURE(K);
            Built b = build(conv_config(v, true, std::to_string(K)));
            const int T = 8, d = 8;
            Tensor x = random_input({2, T, d}, 17);
            const std::vector<float> full = run(*b.mixer, x);
            NoGrad ng;
            StepContext ctx;
            MixerCache cache;
            double err = 0;
            int t0 = 0;
            for (int len : {2, 1, 1, 3, 1}) {
                Tensor chunk = new_tensor({2, len, d}, false);
                for (int s = 0; s < 2; ++s)
                    for (int i = 0; i < len * d; ++i) chunk.data[(s * len * d) + i] = x.data[(s * T + t0) * d + i];
                const Tensor y = b.mixer->forward(chunk, Mask{}, ctx, &cache);
                for (int s = 0; s < 2; ++s)
                    for (int i = 0; i < len * d; ++i)
                        err = std::max(err, (double)std::fabs(y.data[s * len * d + i] - full[(s * T + t0) * d + i]));
                t0 += len;
                CHECK(cache.len == t0);
                CHECK((cache.values.data ? cache.values.dim(1) : 0) == std::min(t0, K - 1));
            }
            CHECK(err < 1e-6);
        }
}

TEST_CASE("conv: DropConnect draws a mask in training only, and at rate 0 training changes nothing") {
    for (const std::string& v : kConvs) {
        CAPTURE(v);
        AttnConfig c = conv_config(v, true, "5");
        Tensor x = random_input({2, 6, 8}, 19);
        for (float rate : {0.0f, 0.5f}) {
            c.attn_dropout = rate;
            Built b = build(c);
            const std::vector<float> eval = run(*b.mixer, x);
            NoGrad ng;
            StepContext ctx;
            ctx.train = true;
            ctx.seed = 3;
            const Tensor y = b.mixer->forward(x, Mask{}, ctx, nullptr);
            CHECK(ctx.calls == 1);  // one draw per layer, even at rate 0
            double diff = 0;
            for (int i = 0; i < y.numel(); ++i) diff += std::fabs(y.data[i] - eval[i]);
            if (rate == 0.0f) CHECK(diff == 0.0);
            else CHECK(diff > 1e-3);
        }
    }
}

TEST_CASE("conv: kernel sizes per layer, parameter counts, and --conv-kernels errors") {
    const int64_t d = 8, H = 2;
    const int want_K[] = {3, 7, 15, 31, 31, 31, 31, 31, 31};  // the default; the last entry repeats
    for (const std::string& v : kConvs)
        for (int layer = 0; layer < 9; ++layer) {
            CAPTURE(v);
            CAPTURE(layer);
            AttnConfig c = conv_config(v, true, "3,7,15,31,31,31,31");
            c.layer = layer;
            const int64_t K = want_K[layer];
            const int64_t kernel = v == "LightConv" ? H * K : d * H * K;  // (H, K), or W_k (d, H K)
            CHECK(mixer_params(c) == 3 * d * d + 3 * d + kernel);
            ParamStore store;
            auto m = make_mixer(store, "a.", c);
            store.finalize(1);
            CHECK(store.trainable_count() == mixer_params(c));
            const std::string leaf = v == "LightConv" ? "a.LightConv.kernel" : "a.DynamicConv.w_kernel";
            CHECK(store.find(leaf)->shape.back() == (v == "LightConv" ? K : H * K));
        }
    // A whole LM counts each layer with its own K.
    for (const std::string& v : kConvs) {
        LmConfig lc;
        lc.vocab = 11, lc.layers = 3, lc.d_ff = 16, lc.dropout = 0.0f;
        lc.attn = conv_config(v, true, "3,5");
        ParamStore store;
        TransformerLM lm(store, lc);
        store.finalize(1);
        CHECK(store.trainable_count() == lm_param_formula(lc));
    }
    for (std::string bad : {"", "3,x", "0", "3,,5", "3,", "-1", "2.5"}) {
        CAPTURE(bad);
        ParamStore store;
        CHECK_THROWS_WITH_AS(make_mixer(store, "a.", conv_config("LightConv", true, bad)),
                             doctest::Contains(("--conv-kernels='" + bad + "'").c_str()), Error);
    }
}
