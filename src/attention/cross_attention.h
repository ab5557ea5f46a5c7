// attention/cross_attention.h: encoder-decoder attention, always dot product (docs/variants.md:
// the synthesizers replace self-attention only). Keys and values come from the encoder's
// output, padded by mask.key_pad.
#pragma once

#include <utility>

#include "attention/variant.h"

namespace synth {

class CrossAttention {
public:
    CrossAttention(ParamStore& store, const std::string& prefix, int d_model, int heads, float attn_dropout,
                   Init weights = Init::Normal);
    // Projects the encoder output to keys and values once: (B, S, d) each.
    std::pair<Tensor, Tensor> memory_kv(const Tensor& memory);
    // x (B, T, d) queries against precomputed (keys, values).
    Tensor forward(const Tensor& x, const std::pair<Tensor, Tensor>& kv, const Mask& mask, StepContext& ctx);

private:
    int d_, H_;
    float attn_dropout_;
    Tensor *w_q_, *w_k_, *w_v_, *w_o_;
};

}  // namespace synth
