#include "attention/cross_attention.h"

#include <cmath>

#include "base/error.h"

namespace synth {

CrossAttention::CrossAttention(ParamStore& s, const std::string& p, int d, int heads, float attn_dropout, Init weights)
    : d_(d), H_(heads), attn_dropout_(attn_dropout) {
    SYNTH_CHECK(heads >= 1 && d % heads == 0, "heads=", heads, " must divide d_model=", d);
    w_q_ = s.weight(p + "w_q", {d, d}, weights);
    w_k_ = s.weight(p + "w_k", {d, d}, weights);
    w_v_ = s.weight(p + "w_v", {d, d}, weights);
    w_o_ = s.weight(p + "w_o", {d, d}, weights);
}

std::pair<Tensor, Tensor> CrossAttention::memory_kv(const Tensor& memory) {
    return {linear(memory, *w_k_, Tensor{}), linear(memory, *w_v_, Tensor{})};  // (B, S, d) each
}

Tensor CrossAttention::forward(const Tensor& x, const std::pair<Tensor, Tensor>& kv, const Mask& mask,
                               StepContext& ctx) {
    const float s = 1.0f / std::sqrt((float)(d_ / H_));
    Tensor q = linear(x, *w_q_, Tensor{}, Transpose::No, s);  // (B, T, d)
    Tensor logits = head_scores(q, kv.first, H_);     // (B, H, T, S)
    Tensor p = softmax(logits, mask);
    if (ctx.train) p = dropout(p, attn_dropout_, ctx.seed, ctx.next_counter());
    return linear(head_mix(p, kv.second), *w_o_, Tensor{});  // (B, T, d)
}

}  // namespace synth
