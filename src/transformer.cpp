#include "transformer.h"

#include "common.h"

namespace synth {

LayerNorm::LayerNorm(ParamStore& s, const std::string& prefix, int d) {
    g_ = s.add(prefix + "g", {d}, Init::Ones);
    b_ = s.add(prefix + "b", {d}, Init::Zeros);
}

FeedForward::FeedForward(ParamStore& s, const std::string& prefix, int d, int d_ff, Init weights) {
    w1_ = s.add(prefix + "w1", {d, d_ff}, weights);
    b1_ = s.add(prefix + "b1", {d_ff}, Init::Zeros);
    w2_ = s.add(prefix + "w2", {d_ff, d}, weights);
    b2_ = s.add(prefix + "b2", {d}, Init::Zeros);
}

Tensor FeedForward::forward(const Tensor& x) const { return linear(linear_relu(x, *w1_, *b1_), *w2_, *b2_); }

Tensor drop(const Tensor& x, float p, Ctx& ctx) {
    return ctx.train && p > 0.0f ? dropout(x, p, ctx.seed, ctx.next_counter()) : x;
}

TransformerLM::TransformerLM(ParamStore& store, const LmConfig& cfg) : cfg_(cfg) {
    const int d = cfg.attn.d_model;
    SYNTH_CHECK(cfg.vocab >= 1 && cfg.layers >= 1 && cfg.d_ff >= 1 && d >= 1, "model sizes must be positive");
    SYNTH_CHECK(cfg.dropout >= 0.0f && cfg.dropout < 1.0f, "dropout must be in [0, 1), got ", cfg.dropout);
    tok_emb_ = store.add("tok_emb", {cfg.vocab, d}, Init::Normal);
    pos_emb_ = store.add("pos_emb", {cfg.attn.max_len, d}, Init::Normal);
    for (int l = 0; l < cfg.layers; ++l) {
        std::string p = "block" + std::to_string(l) + ".";
        blocks_.push_back(std::unique_ptr<Block>(new Block{LayerNorm(store, p + "ln1.", d), LayerNorm(store, p + "ln2.", d),
                                                           SelfAttention(store, p + "attn.", cfg.attn),
                                                           FeedForward(store, p + "ffn.", d, cfg.d_ff)}));
    }
    ln_f_ = std::make_unique<LayerNorm>(store, "ln_f.", d);
}

std::vector<SelfAttention*> TransformerLM::attentions() {
    std::vector<SelfAttention*> out;
    for (auto& b : blocks_) out.push_back(&b->attn);
    return out;
}

Tensor TransformerLM::forward(const std::vector<int32_t>& ids, int B, int T, Ctx& ctx, std::vector<AttnCache>* caches) {
    const int pos0 = caches ? (*caches)[0].len : 0;
    SYNTH_CHECK(pos0 + T <= cfg_.attn.max_len, "sequence of length ", pos0 + T, " is longer than the model's maximum length ",
                cfg_.attn.max_len);
    std::vector<int32_t> pos(T);
    for (int t = 0; t < T; ++t) pos[t] = pos0 + t;
    Tensor x = add(embedding(*tok_emb_, ids, B, T), reshape(embedding(*pos_emb_, pos, 1, T), {T, cfg_.attn.d_model}));
    x = drop(x, cfg_.dropout, ctx);  // (B, T, d)
    Mask causal;
    causal.causal = true;
    for (size_t l = 0; l < blocks_.size(); ++l) {
        Block& b = *blocks_[l];
        x = add(x, drop(b.attn.forward(b.ln1.forward(x), causal, ctx, caches ? &(*caches)[l] : nullptr), cfg_.dropout, ctx));
        x = add(x, drop(b.ffn.forward(b.ln2.forward(x)), cfg_.dropout, ctx));
    }
    Tensor h = ln_f_->forward(x);                                                // (B, T, d)
    return linear(reshape(h, {B * T, cfg_.attn.d_model}), *tok_emb_, Tensor{}, Transpose::Yes);  // (B*T, V)
}

int64_t lm_param_formula(const LmConfig& cfg) {
    const int64_t d = cfg.attn.d_model, f = cfg.d_ff;
    const int64_t shared_per_layer = 2 * d * d   // W_v, W_o
                                     + 4 * d     // two LayerNorms
                                     + d * f + f + f * d + d;  // FFN
    return (int64_t)cfg.vocab * d + (int64_t)cfg.attn.max_len * d + 2 * d +
           cfg.layers * (shared_per_layer + paper_logit_params(cfg.attn.variant, cfg.attn));
}

}  // namespace synth
