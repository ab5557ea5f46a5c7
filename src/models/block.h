// block.h: the pre-LayerNorm Transformer block, shared by the decoder-only LM, the encoder and
// the decoder (nanoGPT's Block, plus an optional cross-attention sublayer):
//
//   x = x + Drop(Mixer(LN(x)))               // self-attention: any variant (attention/variant.h)
//   x = x + Drop(CrossAttn(LN(x), memory))   // decoder blocks only
//   x = x + Drop(FFN(LN(x)))                 // ReLU feed-forward
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "attention/cross_attention.h"
#include "attention/variant.h"

namespace synth {

class LayerNorm {
public:
    LayerNorm(ParamStore& s, const std::string& prefix, int d);
    Tensor forward(const Tensor& x) const { return layernorm(x, *g_, *b_); }

private:
    Tensor *g_, *b_;
};

class FeedForward {
public:
    FeedForward(ParamStore& s, const std::string& prefix, int d, int d_ff, Init weights = Init::Normal);
    // (B, T, d) -> (B, T, d), plus residual (B, T, d) if given
    Tensor forward(const Tensor& x, const Tensor& residual = Tensor{}) const;

private:
    Tensor *w1_, *b1_, *w2_, *b2_;
};

// Residual and embedding dropout, active only when training.
Tensor drop(const Tensor& x, float p, StepContext& ctx);

// What a decoder block attends to: the encoder's keys and values for this layer, and the
// source padding mask.
struct CrossInput {
    const std::pair<Tensor, Tensor>* kv;  // (B, S, d) each
    Mask mask;
};

struct BlockConfig {
    AttnConfig attn;
    int d_ff = 512;
    float dropout = 0.1f;        // residual dropout
    bool cross = false;          // a decoder block of an encoder-decoder
    Init weights = Init::Normal; // feed-forward and cross-attention matrices
};

class Block {
public:
    // Parameters are named prefix + "ln1.", "attn.", ("ln2." and "cross." with cross), and the
    // feed-forward's LayerNorm and "ffn." last.
    Block(ParamStore& s, const std::string& prefix, const BlockConfig& cfg);
    // x (B, T, d) -> (B, T, d); `cross` is required for (and only for) a cross block.
    Tensor forward(const Tensor& x, const Mask& mask, StepContext& ctx, MixerCache* cache = nullptr,
                   const CrossInput* cross = nullptr);
    SequenceMixer& mixer() { return *mixer_; }
    CrossAttention* cross() { return cross_.get(); }

private:
    float dropout_;
    LayerNorm ln_mix_;
    std::optional<LayerNorm> ln_cross_;
    LayerNorm ln_ffn_;
    std::unique_ptr<SequenceMixer> mixer_;
    std::unique_ptr<CrossAttention> cross_;
    FeedForward ffn_;
};

}  // namespace synth
