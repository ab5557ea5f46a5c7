// The translation model and its decoders: incremental decoding equals the full pass for every
// variant, padding changes nothing, beam size 1 is greedy, cross-attention's gradient, token
// batches, and the errors for sources longer than L.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "models/beam.h"
#include "base/error.h"
#include "error_of.h"
#include "gradcheck.h"
#include "base/rng.h"
#include "models/seq2seq.h"
#include "variant_list.h"

using namespace synth;

namespace {

const std::vector<std::string> kVariants = causal_variants_and_pairs();
constexpr int kBos = 1, kEos = 2;  // as Bpe::kBos, Bpe::kEos; pad is 0

// The tests overwrite the parameters with N(0, 0.4) (TinyModel), so `init` matters only for
// the forward pass: glorot multiplies the token embeddings by sqrt(d).
Seq2SeqConfig tiny_config(const std::string& variant, const std::string& init = "normal") {
    Seq2SeqConfig c;
    c.init = init;
    c.vocab = 24;
    c.enc_layers = 2;
    c.dec_layers = 2;
    c.d_ff = 24;
    c.dropout = 0.0f;
    c.attn.d_model = 16;
    c.attn.heads = 2;
    c.attn.max_len = 12;
    c.attn.variant = variant;
    c.attn.settings.set("fr-rank", 3);
    return c;
}

// A model whose parameters are N(0, 0.4): large enough that every component (R's rows, the
// mixture weights, the positions) visibly moves the logits, unlike the N(0, 0.02) init.
struct TinyModel {
    ParamStore store;
    Seq2Seq model;
    explicit TinyModel(const Seq2SeqConfig& c, uint64_t seed = 7) : model(store, c) {
        store.finalize(seed);
        Rng rng(seed + 1);
        rng.fill_normal(store.data(), store.size(), 0.0f, 0.4f);
    }
};

// Random ids in [3, vocab): no <pad>, <bos> or <eos> inside sentences.
std::vector<int32_t> random_ids(Rng& rng, int n, int vocab) {
    std::vector<int32_t> ids(n);
    for (int32_t& id : ids) id = 3 + (int32_t)rng.below(vocab - 3);
    return ids;
}

// Sources x_1 .. x_m <eos> with the given lengths (counting <eos>).
std::vector<std::vector<int32_t>> random_sources(Rng& rng, const std::vector<int>& lens, int vocab) {
    std::vector<std::vector<int32_t>> srcs;
    for (int n : lens) {
        srcs.push_back(random_ids(rng, n - 1, vocab));
        srcs.back().push_back(kEos);
    }
    return srcs;
}

// Sources padded with 0 into one (B, S) row-major batch.
std::vector<int32_t> pad_batch(const std::vector<std::vector<int32_t>>& rows, int S) {
    std::vector<int32_t> ids(rows.size() * S, 0);
    for (size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), ids.begin() + i * S);
    return ids;
}

float max_abs_diff(const float* a, const float* b, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

}  // namespace

TEST_CASE("mt: incremental decoding equals the full decoder pass for every variant") {
    for (const std::string& variant : kVariants) {
        for (const char* init : {"normal", "glorot"}) {
            CAPTURE(variant);
            CAPTURE(init);
            TinyModel tm(tiny_config(variant, init));
            const int V = tm.model.config().vocab, B = 2, S = 7, T = 9;
            Rng rng(11);
            // Sentence 1's source is padded: cross-attention must skip its padding in both paths.
            std::vector<int32_t> src = pad_batch(random_sources(rng, {7, 4}, V), S);
            std::vector<int32_t> tgt = random_ids(rng, B * T, V);
            for (int b = 0; b < B; ++b) tgt[b * T] = kBos;
            NoGrad ng;
            scratch().reset();
            StepContext ctx;
            EncoderMemory mem = tm.model.memory(tm.model.encode(src, B, S, ctx), src);
            Tensor full = tm.model.decode(tgt, B, T, mem, ctx);  // (B*T, V)
            std::vector<MixerCache> caches(tm.model.config().dec_layers);
            float worst = 0.0f, spread = 0.0f;
            for (int t = 0; t < T; ++t) {
                std::vector<int32_t> step = {tgt[t], tgt[T + t]};
                Tensor inc = tm.model.decode(step, B, 1, mem, ctx, &caches);  // (B, V)
                CHECK(caches[0].len == t + 1);
                for (int b = 0; b < B; ++b) {
                    const float* f = full.data + ((int64_t)b * T + t) * V;
                    worst = std::max(worst, max_abs_diff(f, inc.data + (int64_t)b * V, V));
                    spread = std::max(spread, max_abs_diff(f, full.data + (int64_t)b * T * V, V));
                }
            }
            CHECK(worst < 1e-4f);
            CHECK(spread > 0.1f);  // positions really produce different logits: the check is not vacuous
        }
    }
}

TEST_CASE("mt: a padded batch gives the same encoder outputs, logits and translations as each sentence alone") {
    for (const char* variant : {"V", "R", "D+V"}) {
        CAPTURE(variant);
        TinyModel tm(tiny_config(variant));
        const int V = tm.model.config().vocab, d = tm.model.config().attn.d_model;
        Rng rng(5);
        const std::vector<int> src_lens = {8, 3, 5}, tgt_lens = {4, 7, 2};
        auto srcs = random_sources(rng, src_lens, V);
        std::vector<std::vector<int32_t>> tgts;
        for (int n : tgt_lens) {
            tgts.push_back(random_ids(rng, n, V));
            tgts.back()[0] = kBos;
        }
        const int B = 3, S = 8, T = 7;
        NoGrad ng;
        scratch().reset();
        StepContext ctx;
        std::vector<int32_t> src = pad_batch(srcs, S), tgt = pad_batch(tgts, T);
        Tensor enc = tm.model.encode(src, B, S, ctx);
        EncoderMemory mem = tm.model.memory(enc, src);
        Tensor logits = tm.model.decode(tgt, B, T, mem, ctx);
        for (int b = 0; b < B; ++b) {
            const int s = src_lens[b], t = tgt_lens[b];
            Tensor enc1 = tm.model.encode(srcs[b], 1, s, ctx);
            CHECK(max_abs_diff(enc.data + (int64_t)b * S * d, enc1.data, (int64_t)s * d) < 1e-5f);
            Tensor logits1 = tm.model.decode(tgts[b], 1, t, tm.model.memory(enc1, srcs[b]), ctx);
            CHECK(max_abs_diff(logits.data + (int64_t)b * T * V, logits1.data, (int64_t)t * V) < 1e-5f);
        }
        DecodeOptions opt;
        opt.max_extra = 6;
        auto batch_out = greedy_decode(tm.model, srcs, opt);
        size_t produced = 0;
        for (int b = 0; b < B; ++b) {
            auto alone = greedy_decode(tm.model, {srcs[b]}, opt);
            CHECK(alone[0] == batch_out[b]);
            produced += alone[0].size();
        }
        CHECK(produced > 0);
        opt.beam = 3;
        auto beam_batch = beam_search(tm.model, srcs, opt);
        for (int b = 0; b < B; ++b) CHECK(beam_search(tm.model, {srcs[b]}, opt)[0] == beam_batch[b]);
    }
}

TEST_CASE("mt: beam search with beam size 1 is greedy decoding") {
    for (const char* variant : {"V", "R", "FD", "R+V"}) {
        CAPTURE(variant);
        TinyModel tm(tiny_config(variant), 3);
        Rng rng(9);
        auto srcs = random_sources(rng, {2, 5, 9, 12, 6, 3}, tm.model.config().vocab);
        DecodeOptions opt;
        opt.beam = 1;
        opt.max_extra = 5;
        auto greedy = greedy_decode(tm.model, srcs, opt);
        CHECK(beam_search(tm.model, srcs, opt) == greedy);
        size_t produced = 0;
        for (const auto& g : greedy) {
            CHECK((int)g.size() <= 12);  // never past L
            produced += g.size();
        }
        CHECK(produced > 0);
        // translate() sorts by length and batches; the order of its answers is the input's.
        opt.batch_sentences = 4;
        CHECK(translate(tm.model, srcs, opt) == greedy);
    }
}

TEST_CASE("mt: with a one-token output, beam search picks the most probable token, as greedy does") {
    // With a maximum output of one token, beam search compares every first token's
    // log-probability exactly, so its answer must score at least greedy's.
    TinyModel tm(tiny_config("V"), 4);
    Rng rng(2);
    auto srcs = random_sources(rng, {4}, tm.model.config().vocab);
    DecodeOptions opt;
    opt.max_extra = -3;  // min(L, 4 - 3) = 1 output token
    opt.len_penalty = 0.0f;
    opt.beam = 4;
    auto beam = beam_search(tm.model, srcs, opt);
    opt.beam = 1;
    auto greedy = greedy_decode(tm.model, srcs, opt);
    CHECK(beam[0].size() <= 1);
    CHECK(greedy[0].size() <= 1);
    CHECK(beam == greedy);
}

TEST_CASE("mt: gather_rows reorders the batch rows into storage that outlives the arena") {
    Tensor x = new_tensor({3, 2, 2}, false);
    for (int i = 0; i < 12; ++i) x.data[i] = (float)i;
    std::vector<float> store;
    Tensor y = gather_rows(x, {2, 0, 2, 1}, store);
    REQUIRE(y.dim(0) == 4);
    CHECK(y.data == store.data());
    CHECK(std::vector<float>(y.data, y.data + 16) ==
          std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7});
    Tensor z = gather_rows(y, {3}, store);  // gathering from the storage itself is safe
    CHECK(std::vector<float>(z.data, z.data + 4) == std::vector<float>{4, 5, 6, 7});
    CHECK_THROWS_AS(gather_rows(x, {3}, store), Error);
}

TEST_CASE("mt: cross-attention gradient check, and padded memory positions get zero gradient") {
    ParamStore store;
    CrossAttention ca(store, "cross.", 8, 2, 0.0f);
    store.finalize(1);
    Rng rng(3);
    rng.fill_normal(store.data(), store.size(), 0.0f, 0.4f);
    const int B = 2, T = 3, S = 4, d = 8;
    Tensor x = new_tensor({B, T, d}, true), mem = new_tensor({B, S, d}, true);
    rng.fill_normal(x.data, x.numel(), 0.0f, 1.0f);
    rng.fill_normal(mem.data, mem.numel(), 0.0f, 1.0f);
    std::vector<uint8_t> pad = {0, 0, 0, 0, 0, 0, 1, 1};  // sentence 1 has 2 real positions
    Mask mask;
    mask.key_pad = pad.data();
    mask.batch = B;
    std::vector<Tensor> inputs = {x, mem};
    for (const Param& p : store.params()) inputs.push_back(p.t);
    GradCheckResult r = gradcheck(inputs, [&] {
        StepContext ctx;
        return ca.forward(x, ca.memory_kv(mem), mask, ctx);
    });
    CHECK_MESSAGE(r.ok, r.summary());
    CHECK(r.checked > 100);
    for (int s = 2; s < 4; ++s)
        for (int c = 0; c < d; ++c) CHECK(mem.grad[((int64_t)1 * S + s) * d + c] == 0.0f);
}

TEST_CASE("mt: token batches respect the budget and cover every pair once") {
    Rng rng(8);
    std::vector<TokenPair> pairs(50);
    for (auto& p : pairs) {
        p.src = random_ids(rng, 1 + (int)rng.below(15), 20);
        p.tgt = random_ids(rng, 1 + (int)rng.below(15), 20);
    }
    auto batches = token_batches(pairs, 40);
    std::vector<int> seen(pairs.size(), 0);
    for (const auto& b : batches) {
        size_t width = 0;
        for (int i : b) {
            ++seen[i];
            width = std::max({width, pairs[i].src.size(), pairs[i].tgt.size() + 1});
        }
        CHECK((b.size() == 1 || b.size() * width <= 40));
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == 50);
    MtBatch mb = make_batch(pairs, batches[0], 0, kBos, kEos);
    CHECK(mb.tgt_in[0] == kBos);
    CHECK(mb.tgt_tokens == (int64_t)[&] {
        int64_t n = 0;
        for (int i : batches[0]) n += pairs[i].tgt.size() + 1;
        return n;
    }());
}

TEST_CASE("mt: a source longer than L is a clear error for every variant") {
    for (const char* variant : {"V", "R", "D", "FR", "FD"}) {
        CAPTURE(variant);
        TinyModel tm(tiny_config(variant));
        Rng rng(1);
        auto srcs = random_sources(rng, {5, 13}, tm.model.config().vocab);  // L = 12
        DecodeOptions opt;
        CHECK_THROWS_WITH_AS(translate(tm.model, srcs, opt),
                             doctest::Contains("sentence 2: the source has 13 tokens (with <eos>), more than the "
                                               "model's maximum length L=12"),
                             Error);
        NoGrad ng;
        StepContext ctx;
        CHECK_THROWS_WITH_AS(tm.model.encode(pad_batch({srcs[1]}, 13), 1, 13, ctx),
                             doctest::Contains("longer than the model's maximum length L=12"), Error);
    }
}

TEST_CASE("mt: the glorot initialisation gives unit-scale embeddings and Glorot-uniform matrices") {
    Seq2SeqConfig c = tiny_config("D+V", "glorot");
    c.vocab = 400;
    c.attn.d_model = 64;
    c.attn.heads = 4;
    ParamStore store;
    Seq2Seq model(store, c);
    store.finalize(3);
    auto stats = [&](const std::string& name) {
        for (const Param& p : store.params())
            if (p.name == name) {
                const int64_t n = numel_of(p.shape);
                double ss = 0, mx = 0;
                for (int64_t i = 0; i < n; ++i) ss += (double)p.t.data[i] * p.t.data[i], mx = std::max(mx, (double)std::fabs(p.t.data[i]));
                return std::pair<double, double>{std::sqrt(ss / n), mx};
            }
        FAIL("no parameter " << name);
        return std::pair<double, double>{};
    };
    CHECK(stats("emb").first == doctest::Approx(1.0 / 8.0).epsilon(0.05));     // N(0, 1/d), d = 64
    CHECK(stats("src_pos").first == doctest::Approx(1.0).epsilon(0.05));       // unit scale
    // Glorot uniform on (-lim, lim): every value inside, root mean square lim / sqrt(3).
    auto check_glorot = [&](const std::string& name, int fan_in, int fan_out) {
        CAPTURE(name);
        const double lim = std::sqrt(6.0 / (fan_in + fan_out));
        const auto [rms, largest] = stats(name);
        CHECK(largest <= lim);
        CHECK(rms == doctest::Approx(lim / std::sqrt(3.0)).epsilon(0.05));
    };
    check_glorot("enc0.attn.w_v", 64, 64);
    check_glorot("dec1.cross.w_q", 64, 64);
    check_glorot("enc1.ffn.w1", 64, 24);
    c.init = "uniform";
    ParamStore other;
    CHECK_THROWS_WITH_AS(Seq2Seq(other, c), doctest::Contains("unknown init 'uniform' (normal, glorot)"), Error);
}

TEST_CASE("mt: --placement puts the variant in the encoder, the decoder or both, V elsewhere") {
    auto has = [](const ParamStore& s, const std::string& name) { return s.find(name) != nullptr; };
    for (std::string placement : {"both", "encoder", "decoder"}) {
        CAPTURE(placement);
        Seq2SeqConfig c = tiny_config("R");
        c.placement = placement;
        ParamStore store;
        Seq2Seq model(store, c);
        const bool enc = placement != "decoder", dec = placement != "encoder";
        for (int l = 0; l < 2; ++l) {
            CHECK(has(store, "enc" + std::to_string(l) + ".attn.R.r") == enc);
            CHECK(has(store, "enc" + std::to_string(l) + ".attn.V.w_q") == !enc);
            CHECK(has(store, "dec" + std::to_string(l) + ".attn.R.r") == dec);
            CHECK(has(store, "dec" + std::to_string(l) + ".attn.V.w_q") == !dec);
        }
    }
    // An encoder-only variant fits only the encoder.
    Seq2SeqConfig lin = tiny_config("Linformer");
    lin.attn.settings.set("linformer-k", 4);
    ParamStore s1, s2, s3;
    CHECK_THROWS_WITH_AS(Seq2Seq(s1, lin), doctest::Contains("Linformer is encoder-only"), Error);
    lin.placement = "encoder";
    Seq2Seq ok(s2, lin);
    CHECK(has(s2, "enc0.attn.Linformer.e"));
    lin.placement = "middle";
    CHECK_THROWS_WITH_AS(Seq2Seq(s3, lin), doctest::Contains("unknown --placement 'middle'"), Error);
}

TEST_CASE("mt: decoding at and beyond its settings' limits: an error naming the setting, or a bounded answer") {
    // Under DEBUG=1 (ASan + UBSan) this is the check that no setting reads past a buffer.
    using synth_test::error_of;
    Seq2SeqConfig c = tiny_config("V");
    c.vocab = 5;  // <pad> <bos> <eos> and two words: a beam can be as wide as the vocabulary
    TinyModel tm(c, 11);
    const int V = 5, L = 12;
    Rng rng(4);
    auto srcs = random_sources(rng, {3, 12, 1, 7}, V);
    auto bounded = [&](const std::vector<std::vector<int32_t>>& out) {
        REQUIRE(out.size() == srcs.size());
        for (const auto& o : out) {
            CHECK((int)o.size() <= L);
            for (int32_t t : o) CHECK((t >= 0 && t < V));
        }
    };
    for (int beam : {1, 2, 3, 4, 5}) {  // up to K = V: fewer than K continuations at the first step
        CAPTURE(beam);
        for (int extra : {std::numeric_limits<int>::min(), -3, 0, 50, std::numeric_limits<int>::max()}) {
            CAPTURE(extra);
            DecodeOptions opt;
            opt.beam = beam;
            opt.max_extra = extra;
            opt.batch_sentences = 3;
            bounded(translate(tm.model, srcs, opt));
            if (beam == 1) CHECK(beam_search(tm.model, srcs, opt) == greedy_decode(tm.model, srcs, opt));
        }
    }
    auto fails = [&](DecodeOptions opt, const char* needle) {
        CAPTURE(needle);
        CHECK(std::string(error_of([&] { translate(tm.model, srcs, opt); }).c_str()).find(needle) != std::string::npos);
        CHECK(std::string(error_of([&] { beam_search(tm.model, srcs, opt); }).c_str()).find(needle) != std::string::npos);
        CHECK(std::string(error_of([&] { greedy_decode(tm.model, srcs, opt); }).c_str()).find(needle) !=
              std::string::npos);
    };
    DecodeOptions o;
    o.beam = V + 1;
    fails(o, "beam size 6 is larger than the vocabulary (5 tokens)");
    o = DecodeOptions();
    o.beam = 0;
    fails(o, "beam size must be positive");
    o = DecodeOptions();
    o.bos = V;
    fails(o, "<bos> id 5 is outside the vocabulary of 5 ids");
    o = DecodeOptions();
    o.eos = -1;
    fails(o, "<eos> id -1 is outside");
    o = DecodeOptions();
    o.len_penalty = std::numeric_limits<float>::quiet_NaN();
    fails(o, "length penalty must be a finite number");
    o = DecodeOptions();
    o.batch_sentences = 0;
    CHECK(std::string(error_of([&] { translate(tm.model, srcs, o); }).c_str()).find("sentences per decoding batch") !=
          std::string::npos);
    // Source ids index the embedding table; a source longer than L is named.
    auto bad = srcs;
    bad[1][0] = V;
    CHECK(error_of([&] { translate(tm.model, bad, DecodeOptions()); }) ==
          doctest::String("sentence 2: token id 5 is outside the model's vocabulary of 5 ids"));
    bad = srcs;
    bad[2] = std::vector<int32_t>(L + 1, 3);
    CHECK(std::string(error_of([&] { greedy_decode(tm.model, bad, DecodeOptions()); }).c_str())
              .find("sentence 3: the source has 13 tokens") != std::string::npos);
}
