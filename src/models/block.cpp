#include "models/block.h"

#include "base/error.h"
#include "engine/gemm/blas.h"

namespace synth {

LayerNorm::LayerNorm(ParamStore& s, const std::string& prefix, int d) {
    g_ = s.bias(prefix + "g", {d}, Init::Ones);
    b_ = s.bias(prefix + "b", {d});
}

FeedForward::FeedForward(ParamStore& s, const std::string& prefix, int d, int d_ff, Init weights) {
    w1_ = s.weight(prefix + "w1", {d, d_ff}, weights);
    b1_ = s.bias(prefix + "b1", {d_ff});
    w2_ = s.weight(prefix + "w2", {d_ff, d}, weights);
    b2_ = s.bias(prefix + "b2", {d});
}

Tensor FeedForward::forward(const Tensor& x, const Tensor& residual) const {
    return feed_forward(x, *w1_, *b1_, *w2_, *b2_, residual);
}

Tensor drop(const Tensor& x, float p, StepContext& ctx) {
    return ctx.train && p > 0.0f ? dropout(x, p, ctx.seed, ctx.next_counter()) : x;
}

// The LayerNorms are declared first, in sublayer order (ln1, ln2[, ln3]), then the sublayers.
Block::Block(ParamStore& s, const std::string& p, const BlockConfig& c)
    : dropout_(c.dropout),
      ln_mix_(s, p + "ln1.", c.attn.d_model),
      ln_cross_(c.cross ? std::optional<LayerNorm>(std::in_place, s, p + "ln2.", c.attn.d_model) : std::nullopt),
      ln_ffn_(s, p + (c.cross ? "ln3." : "ln2."), c.attn.d_model),
      mixer_(make_mixer(s, p + "attn.", c.attn)),
      cross_(c.cross ? std::make_unique<CrossAttention>(s, p + "cross.", c.attn.d_model, c.attn.heads,
                                                        c.attn.attn_dropout, c.weights)
                     : nullptr),
      ffn_(s, p + "ffn.", c.attn.d_model, c.d_ff, c.weights) {
    SYNTH_CHECK(c.dropout >= 0.0f && c.dropout < 1.0f, "dropout must be in [0, 1), got ", c.dropout);
}

Tensor Block::forward(const Tensor& x, const Mask& mask, StepContext& ctx, MixerCache* cache, const CrossInput* cross) {
    SYNTH_CHECK(bool(cross) == bool(cross_), "Block::forward: a cross-attention input is needed by, and only by, a "
                "decoder block");
    // In inference under bf16, the layernorms, the FFN's ReLU and the softmax hand their bf16
    // bits to the products they feed (docs/performance.md): no block reuses another's memory.
    const Bf16Companions companions;
    Tensor h = add(x, drop(mixer_->forward(ln_mix_.forward(x), mask, ctx, cache), dropout_, ctx));
    if (cross_) h = add(h, drop(cross_->forward(ln_cross_->forward(h), *cross->kv, cross->mask, ctx), dropout_, ctx));
    if (ctx.train && dropout_ > 0.0f) return add(h, drop(ffn_.forward(ln_ffn_.forward(h)), dropout_, ctx));
    return ffn_.forward(ln_ffn_.forward(h), h);  // no dropout: the residual add is part of the FFN's op
}

}  // namespace synth
