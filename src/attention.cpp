#include "attention.h"

#include <algorithm>
#include <cmath>

#include "autograd.h"
#include "common.h"

namespace synth {

const std::vector<std::string>& known_components() {
    static const std::vector<std::string> names = {"V", "D", "R", "Rfix", "FR", "FD"};
    return names;
}

std::vector<std::string> parse_variant(const std::string& variant) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t plus = variant.find('+', start);
        std::string part = variant.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
        SYNTH_CHECK(!part.empty(), "malformed variant '", variant, "': empty component (use e.g. R+V)");
        const auto& known = known_components();
        SYNTH_CHECK(std::find(known.begin(), known.end(), part) != known.end(), "unknown attention variant '", part,
                    "' in '", variant, "' (known: V, D, R, Rfix, FR, FD and mixtures like R+V)");
        SYNTH_CHECK(std::find(parts.begin(), parts.end(), part) == parts.end(), "variant '", variant, "' repeats ",
                    part);
        parts.push_back(part);
        if (plus == std::string::npos) break;
        start = plus + 1;
    }
    return parts;
}

int default_fd_a(int L) {
    int best = 1;
    for (int a = 1; a <= L; ++a)
        if (L % a == 0 && std::fabs(a - std::sqrt((double)L)) < std::fabs(best - std::sqrt((double)L))) best = a;
    return best;
}

static int fd_a_of(const AttnConfig& cfg) {
    int a = cfg.fd_a > 0 ? cfg.fd_a : default_fd_a(cfg.max_len);
    SYNTH_CHECK(cfg.max_len % a == 0, "FD's a=", a, " does not divide the maximum length L=", cfg.max_len);
    return a;
}

// ---------------------------------------------------------------------------------
// V: vanilla dot product, logits = Q K^T / sqrt(d_h)
// ---------------------------------------------------------------------------------
class DotSource : public LogitsSource {
public:
    DotSource(ParamStore& s, const std::string& p, const AttnConfig& c) : H_(c.heads) {
        w_q_ = s.add(p + "V.w_q", {c.d_model, c.d_model}, c.weights);
        w_k_ = s.add(p + "V.w_k", {c.d_model, c.d_model}, c.weights);
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor* key_cache) override {
        const int D = x.dim(2) / H_;
        // The 1/sqrt(d_h) scale is applied to Q inside its GEMM: the same logits, no extra pass.
        Tensor q = linear(x, *w_q_, Tensor{}, Transpose::No, 1.0f / std::sqrt((float)D));  // (B, Tq, d)
        Tensor k = linear(x, *w_k_, Tensor{});                                                      // (B, Tq, d)
        if (key_cache) {
            if (key_cache->data) k = concat_seq(*key_cache, k);  // (B, Tk, d)
            *key_cache = k;
        }
        return head_scores(q, k, H_, mask);  // (B, H, Tq, Tk); causal: no work above the diagonal
    }

private:
    int H_;
    Tensor *w_q_, *w_k_;
};

// ---------------------------------------------------------------------------------
// D: Dense Synthesizer, B_i = W2_h ReLU(W1 x_i + b1)_h + b2_h, logits[i, j] = B_i[j]
// FD: Factorized Dense, C_i[j] = A_i[j mod a] * B_i[floor(j / a)] on the same hidden layer
// ---------------------------------------------------------------------------------
class DenseSource : public LogitsSource {
public:
    DenseSource(ParamStore& s, const std::string& p, const AttnConfig& c, bool factorized)
        : H_(c.heads), factorized_(factorized) {
        const int d = c.d_model, D = d / c.heads, L = c.max_len;
        const std::string n = p + (factorized ? "FD." : "D.");
        w1_ = s.add(n + "w1", {d, d}, c.weights);
        b1_ = s.add(n + "b1", {d}, Init::Zeros);
        if (!factorized) {
            const int Hw = c.share_w2 ? 1 : c.heads;
            w2_ = s.add(n + "w2", {Hw, D, L}, c.weights);
            b2_ = s.add(n + "b2", {Hw, L}, Init::Zeros);
        } else {
            a_ = fd_a_of(c);
            b_ = L / a_;
            w2_ = s.add(n + "w_a", {c.heads, D, a_}, c.weights);
            b2_ = s.add(n + "b_a", {c.heads, a_}, Init::Zeros);
            w3_ = s.add(n + "w_b", {c.heads, D, b_}, c.weights);
            b3_ = s.add(n + "b_b", {c.heads, b_}, Init::Zeros);
        }
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        const int Tk = mask.q_offset + x.dim(1);
        Tensor h = linear_relu(x, *w1_, *b1_);  // (B, Tq, H*D), read per head in place
        if (!factorized_) return head_linear(h, H_, *w2_, *b2_, Tk, mask);  // (B, H, Tq, Tk)
        Tensor A = head_linear(h, H_, *w2_, *b2_, a_);                      // (B, H, Tq, a)
        Tensor Bf = head_linear(h, H_, *w3_, *b3_, b_);                     // (B, H, Tq, b)
        return fd_outer(A, Bf, Tk);                                          // (B, H, Tq, Tk)
    }

private:
    int H_;
    bool factorized_;
    int a_ = 0, b_ = 0;
    Tensor *w1_, *b1_, *w2_, *b2_, *w3_ = nullptr, *b3_ = nullptr;
};

// ---------------------------------------------------------------------------------
// R / Rfix: Random Synthesizer, logits = R_h[i, j]; FR: (R1_h R2_h^T)[i, j]
// ---------------------------------------------------------------------------------
static Init r_init_of(const AttnConfig& c) {
    SYNTH_CHECK(c.r_init == "normal" || c.r_init == "glorot", "unknown --r-init '", c.r_init, "' (normal, glorot)");
    return c.r_init == "normal" ? Init::Normal : Init::GlorotUniform;
}

class RandomSource : public LogitsSource {
public:
    RandomSource(ParamStore& s, const std::string& p, const AttnConfig& c, bool trainable) {
        const std::string n = p + (trainable ? "R." : "Rfix.");
        r_ = s.add(n + "r", {c.heads, c.max_len, c.max_len}, r_init_of(c), 0.02f, trainable);
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        // Independent of x's content: (1, H, Tq, Tk), broadcast over the batch.
        const int q0 = mask.q_offset;
        return crop(*r_, x.dim(1), q0 + x.dim(1), q0);
    }

private:
    Tensor* r_;
};

class FactorizedRandomSource : public LogitsSource {
public:
    FactorizedRandomSource(ParamStore& s, const std::string& p, const AttnConfig& c) : k_(c.fr_rank) {
        SYNTH_CHECK(k_ >= 1, "FR rank k must be positive, got ", k_);
        r1_ = s.add(p + "FR.r1", {c.heads, c.max_len, k_}, r_init_of(c));
        r2_ = s.add(p + "FR.r2", {c.heads, c.max_len, k_}, r_init_of(c));
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        const int Tq = x.dim(1), Tk = mask.q_offset + Tq;
        return bmm(crop(*r1_, Tq, k_, mask.q_offset), crop(*r2_, Tk, k_), Transpose::No, Transpose::Yes);  // (1, H, Tq, Tk)
    }

private:
    int k_;
    Tensor *r1_, *r2_;
};

std::unique_ptr<LogitsSource> make_source(const std::string& name, ParamStore& store, const std::string& prefix,
                                          const AttnConfig& cfg) {
    if (name == "V") return std::make_unique<DotSource>(store, prefix, cfg);
    if (name == "D") return std::make_unique<DenseSource>(store, prefix, cfg, false);
    if (name == "FD") return std::make_unique<DenseSource>(store, prefix, cfg, true);
    if (name == "R") return std::make_unique<RandomSource>(store, prefix, cfg, true);
    if (name == "Rfix") return std::make_unique<RandomSource>(store, prefix, cfg, false);
    if (name == "FR") return std::make_unique<FactorizedRandomSource>(store, prefix, cfg);
    fail("unknown attention variant '", name, "'");
}

// ---------------------------------------------------------------------------------
// SelfAttention: sources -> mixture -> masked softmax -> values -> output
// ---------------------------------------------------------------------------------
SelfAttention::SelfAttention(ParamStore& store, const std::string& prefix, const AttnConfig& cfg)
    : cfg_(cfg), names_(parse_variant(cfg.variant)) {
    SYNTH_CHECK(cfg.heads >= 1 && cfg.d_model >= 1 && cfg.d_model % cfg.heads == 0, "heads=", cfg.heads,
                " must divide d_model=", cfg.d_model);
    SYNTH_CHECK(cfg.max_len >= 1, "maximum length L must be positive");
    for (const std::string& n : names_) sources_.push_back(make_source(n, store, prefix, cfg));
    if (names_.size() > 1) {
        // w = 0: the mixture starts uniform (PAPER.md); no weight decay on it.
        w_mix_ = store.add(prefix + "mix.w", {cfg.heads, (int)names_.size()}, Init::Zeros);
        store.params().back().decay = false;
    }
    w_v_ = store.add(prefix + "w_v", {cfg.d_model, cfg.d_model}, cfg.weights);
    w_o_ = store.add(prefix + "w_o", {cfg.d_model, cfg.d_model}, cfg.weights);
}

Tensor SelfAttention::forward(const Tensor& x, Mask mask, Ctx& ctx, AttnCache* cache) {
    const int Tq = x.dim(1), q0 = cache ? cache->len : 0, Tk = q0 + Tq;
    bool sized_by_L = names_.size() > 1 || names_[0] != "V";
    SYNTH_CHECK(!sized_by_L || Tk <= cfg_.max_len, "sequence of length ", Tk, " is longer than the maximum length L=",
                cfg_.max_len, " of the ", cfg_.variant, " synthesizer (raise --seq / the model's L)");
    if (cache && cache->keys.empty()) cache->keys.resize(sources_.size());
    mask.q_offset = q0;
    std::vector<Tensor> comps;
    for (size_t i = 0; i < sources_.size(); ++i)
        comps.push_back(sources_[i]->logits(x, mask, cache ? &cache->keys[i] : nullptr));
    Tensor logits = comps.size() == 1 ? comps[0] : mix(comps, *w_mix_);  // (B or 1, H, Tq, Tk)
    Tensor p = softmax(logits, mask);  // (B or 1, H, Tq, Tk)
    if (ctx.train) p = dropout(p, cfg_.attn_dropout, ctx.seed, ctx.next_counter());
    Tensor v = linear(x, *w_v_, Tensor{});  // (B, Tq, d)
    if (cache) {
        if (cache->values.data) v = concat_seq(cache->values, v);  // (B, Tk, d)
        cache->values = v;
        cache->len = Tk;
    }
    return linear(head_mix(p, v, mask), *w_o_, Tensor{});  // (B, Tq, d)
}

std::vector<float> SelfAttention::alphas(int h) const {
    if (!w_mix_) return {};
    const int C = (int)names_.size();
    std::vector<float> a(C);
    const float* w = w_mix_->data + (int64_t)h * C;
    float mx = *std::max_element(w, w + C), s = 0.0f;
    for (int c = 0; c < C; ++c) s += (a[c] = std::exp(w[c] - mx));
    for (float& v : a) v /= s;
    return a;
}

// ---------------------------------------------------------------------------------
// CrossAttention: dot product over the encoder memory
// ---------------------------------------------------------------------------------
CrossAttention::CrossAttention(ParamStore& s, const std::string& p, int d, int heads, float attn_dropout, Init weights)
    : d_(d), H_(heads), attn_dropout_(attn_dropout) {
    SYNTH_CHECK(heads >= 1 && d % heads == 0, "heads=", heads, " must divide d_model=", d);
    w_q_ = s.add(p + "w_q", {d, d}, weights);
    w_k_ = s.add(p + "w_k", {d, d}, weights);
    w_v_ = s.add(p + "w_v", {d, d}, weights);
    w_o_ = s.add(p + "w_o", {d, d}, weights);
}

std::pair<Tensor, Tensor> CrossAttention::memory_kv(const Tensor& memory) {
    return {linear(memory, *w_k_, Tensor{}), linear(memory, *w_v_, Tensor{})};
}

Tensor CrossAttention::forward(const Tensor& x, const std::pair<Tensor, Tensor>& kv, const Mask& mask, Ctx& ctx) {
    const float s = 1.0f / std::sqrt((float)(d_ / H_));
    Tensor q = linear(x, *w_q_, Tensor{}, Transpose::No, s);   // (B, T, d)
    Tensor logits = head_scores(q, kv.first, H_);      // (B, H, T, S)
    Tensor p = softmax(logits, mask);
    if (ctx.train) p = dropout(p, attn_dropout_, ctx.seed, ctx.next_counter());
    return linear(head_mix(p, kv.second), *w_o_, Tensor{});  // (B, T, d)
}

int64_t paper_logit_params(const std::string& variant, const AttnConfig& c) {
    const int64_t d = c.d_model, H = c.heads, D = d / H, L = c.max_len, k = c.fr_rank;
    std::vector<std::string> parts = parse_variant(variant);
    int64_t n = parts.size() > 1 ? H * (int64_t)parts.size() : 0;
    for (const std::string& p : parts) {
        if (p == "V") n += 2 * d * d;
        if (p == "D") n += d * d + d + (c.share_w2 ? 1 : H) * (D * L + L);
        if (p == "R") n += H * L * L;
        if (p == "FR") n += 2 * H * L * k;
        if (p == "FD") {
            int64_t a = fd_a_of(c), b = L / a;
            n += d * d + d + H * D * (a + b) + H * (a + b);
        }
    }
    return n;
}

}  // namespace synth
