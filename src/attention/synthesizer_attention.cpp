#include "attention/synthesizer_attention.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace synth {

SynthesizerAttention::SynthesizerAttention(ParamStore& store, const std::string& prefix, const AttnConfig& cfg)
    : cfg_(cfg), sized_by_L_(sized_by_L(cfg.variant)) {
    SYNTH_CHECK(cfg.heads >= 1 && cfg.d_model >= 1 && cfg.d_model % cfg.heads == 0, "heads=", cfg.heads,
                " must divide d_model=", cfg.d_model);
    SYNTH_CHECK(cfg.max_len >= 1, "maximum length L must be positive");
    const std::vector<std::string> names = parse_variant(cfg.variant);
    for (const std::string& n : names) sources_.push_back(variant_info(n).make_source(store, prefix, cfg));
    // w = 0: the mixture starts uniform (docs/variants.md); a bias, so never decayed.
    if (names.size() > 1) w_mix_ = store.bias(prefix + "mix.w", {cfg.heads, (int)names.size()});
    w_v_ = store.weight(prefix + "w_v", {cfg.d_model, cfg.d_model}, cfg.weights);
    w_o_ = store.weight(prefix + "w_o", {cfg.d_model, cfg.d_model}, cfg.weights);
}

Tensor SynthesizerAttention::forward(const Tensor& x, Mask mask, StepContext& ctx, MixerCache* cache) {
    const int B = x.dim(0), Tq = x.dim(1), q0 = cache ? cache->len : 0, Tk = q0 + Tq;
    SYNTH_CHECK(!sized_by_L_ || Tk <= cfg_.max_len, "sequence of length ", Tk, " is longer than the maximum length L=",
                cfg_.max_len, " of the ", cfg_.variant, " synthesizer (raise --seq / the model's L)");
    if (cache && cache->keys.empty()) cache->keys.resize(sources_.size());
    mask.q_offset = q0;
    std::vector<Tensor> comps;
    for (size_t i = 0; i < sources_.size(); ++i)
        comps.push_back(sources_[i]->logits(x, mask, cache ? &cache->keys[i] : nullptr));
    Tensor logits = comps.size() == 1 ? comps[0] : mix(comps, *w_mix_);  // (B or 1, H, Tq, Tk)
    Tensor p = softmax(logits, mask);                                    // (B or 1, H, Tq, Tk)
    if (probe_ && !cache) probe_->add(p, B);
    if (ctx.train) {
        const uint64_t counter = ctx.next_counter();  // drawn even at rate 0, so later masks do not move
        if (cfg_.attn_dropout > 0.0f) {
            // Batch-shared probabilities (R, Rfix, FR without padding) get one mask per sequence.
            if (p.dim(0) != B) p = broadcast_batch(p, B);  // (B, H, Tq, Tk)
            p = dropout(p, cfg_.attn_dropout, ctx.seed, counter);
        }
    }
    Tensor v = linear(x, *w_v_, Tensor{});  // (B, Tq, d)
    if (cache) {
        if (cache->values.data) v = concat_seq(cache->values, v);  // (B, Tk, d)
        cache->values = v;
        cache->len = Tk;
    }
    return linear(head_mix(p, v, mask), *w_o_, Tensor{});  // (B, Tq, d)
}

std::vector<float> SynthesizerAttention::mixture_weights(int h) const {
    if (!w_mix_) return {};
    const int C = (int)sources_.size();
    std::vector<float> alpha(C);
    synth::mixture_weights(w_mix_->data + (int64_t)h * C, C, alpha.data());
    return alpha;
}

void AttentionProbe::add(const Tensor& p, int B) {
    const int Bp = p.dim(0);
    if (sum.empty()) H = p.dim(1), Tq = p.dim(2), Tk = p.dim(3), sum.assign((size_t)H * Tq * Tk, 0.0);
    SYNTH_CHECK(p.dim(1) == H && p.dim(2) == Tq && p.dim(3) == Tk, "attention probe: maps of shape ", p.shape_str(),
                " after (", H, ", ", Tq, ", ", Tk, ")");
    const int64_t n = (int64_t)H * Tq * Tk;
    const double weight = Bp == B ? 1.0 : (double)B / Bp;  // a batch-shared map stands for every sequence
    for (int b = 0; b < Bp; ++b)
        for (int64_t i = 0; i < n; ++i) sum[i] += weight * p.data[b * n + i];
    sequences += B;
}

std::vector<float> AttentionProbe::mean() const {
    std::vector<float> m(sum.size());
    for (size_t i = 0; i < sum.size(); ++i) m[i] = sequences ? (float)(sum[i] / sequences) : 0.0f;
    return m;
}

}  // namespace synth
