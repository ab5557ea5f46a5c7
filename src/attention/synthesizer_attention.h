// attention/synthesizer_attention.h: self-attention whose logits come from one or more logits
// sources, mixed inside the softmax (docs/variants.md):
//
//   logits_c = source_c(x)                         // (B or 1, H, Tq, Tk) each
//   logits   = sum_c softmax(w_h)_c * logits_c     // one mixture weight vector per head
//   P        = softmax(logits + mask)              // causal / padding as additive -inf
//   out      = merge_heads(P @ split_heads(x W_v)) W_o
#pragma once

#include "attention/variant.h"

namespace synth {

class SynthesizerAttention : public SequenceMixer {
public:
    SynthesizerAttention(ParamStore& store, const std::string& prefix, const AttnConfig& cfg);
    Tensor forward(const Tensor& x, Mask mask, StepContext& ctx, MixerCache* cache) override;
    std::vector<float> mixture_weights(int h) const override;
    bool set_probe(AttentionProbe* probe) override {
        probe_ = probe;
        return true;
    }

private:
    AttnConfig cfg_;
    bool sized_by_L_;
    std::vector<std::unique_ptr<LogitsSource>> sources_;
    Tensor *w_mix_ = nullptr, *w_v_, *w_o_;
    AttentionProbe* probe_ = nullptr;
};

}  // namespace synth
