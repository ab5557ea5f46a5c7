// transformer.h: pre-LayerNorm Transformer pieces and the decoder-only language model.
//
//   x = tok_emb[ids] + pos_emb[0..T)                 // (B, T, d)
//   for each block:  x = x + Drop(SelfAttn(LN(x)))  // causal; any Synthesizer variant
//                    x = x + Drop(FFN(LN(x)))        // ReLU FFN
//   logits = LN(x) tok_emb^T                        // tied output embedding, (B*T, V)
#pragma once

#include <memory>
#include <vector>

#include "attention.h"

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
    Tensor forward(const Tensor& x) const;  // (B, T, d) -> (B, T, d)

private:
    Tensor *w1_, *b1_, *w2_, *b2_;
};

struct LmConfig {
    int vocab = 65;
    int layers = 4;
    int d_ff = 512;
    float dropout = 0.1f;  // residual and embedding dropout
    AttnConfig attn;       // d_model, heads, max_len (= context length L), variant, ...
};

// Residual dropout, active only when training.
Tensor drop(const Tensor& x, float p, Ctx& ctx);

class TransformerLM {
public:
    TransformerLM(ParamStore& store, const LmConfig& cfg);
    // ids: B*T token ids (row-major). Positions start at caches' length when decoding
    // incrementally (caches: one per layer) and at 0 otherwise. Returns logits (B*T, V).
    Tensor forward(const std::vector<int32_t>& ids, int B, int T, Ctx& ctx, std::vector<AttnCache>* caches = nullptr);
    const LmConfig& config() const { return cfg_; }
    std::vector<SelfAttention*> attentions();

private:
    struct Block {
        LayerNorm ln1, ln2;
        SelfAttention attn;
        FeedForward ffn;
    };
    LmConfig cfg_;
    Tensor *tok_emb_, *pos_emb_;
    std::vector<std::unique_ptr<Block>> blocks_;
    std::unique_ptr<LayerNorm> ln_f_;
};

// Trainable parameters of a TransformerLM given by PAPER.md's per-layer formula plus the
// parts every variant shares (embeddings, W_v, W_o, LayerNorms, FFN).
int64_t lm_param_formula(const LmConfig& cfg);

}  // namespace synth
