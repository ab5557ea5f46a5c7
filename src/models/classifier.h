// classifier.h: the encoder-only Transformer classifier (build/cls, docs/classification.md).
//
//   x = tok_emb[ids] + pos_emb[0..T)             // (B, T, d); ids start with the [CLS] token
//   per layer: x = Block(x)                      // non-causal, key-padding mask; any variant,
//                                                // encoder-only ones included (block.h)
//   h = LN(x)                                    // (B, T, d)
//   pooled = h[:, 0]            (pool = cls)     // (B, d)
//          | mean of h over the non-padding positions (pool = mean)
//   logits = W2 relu(W1 pooled + b1) + b2        // (B, classes): LRA's classifier head
//
// The head is LRA's (lra_benchmarks/models/layers/common_layers.py, classifier_head: a hidden
// layer of the MLP width, ReLU, then the classes). Positions are learned, one (L, d) table, so
// L bounds the length for every variant; a longer sequence is an error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/block.h"

namespace synth {

class Flags;

struct ClassifierConfig {
    int vocab = 17;
    int classes = 10;
    int layers = 2;
    int d_ff = 512;               // the blocks' feed-forward width, and the head's hidden width
    float dropout = 0.1f;         // embedding and residual dropout
    std::string pool = "cls";     // cls | mean
    int pad = 0;                  // the padding id
    AttnConfig attn;              // d_model, heads, max_len L, variant, its settings

    // The field table: every field but vocab, classes and pad (the task's) a flag, with its role.
    void bind(Flags& f);
};

// h (B, T, d) -> (B, d): "cls" takes position 0, "mean" the mean over the positions whose
// pad flag (B, T) is 0, so padded positions contribute nothing (and get no gradient).
Tensor pool_sequence(const Tensor& h, const std::vector<uint8_t>& pad, const std::string& mode);

class Classifier {
public:
    Classifier(ParamStore& store, const ClassifierConfig& cfg);
    // ids: B*T token ids, row-major, each row padded with cfg.pad on the right (row 0 of a
    // sequence is never padding). Returns logits (B, classes). Throws if T > L.
    Tensor forward(const std::vector<int32_t>& ids, int B, int T, StepContext& ctx);
    const ClassifierConfig& config() const { return cfg_; }

private:
    ClassifierConfig cfg_;
    Tensor *tok_emb_, *pos_emb_;
    std::vector<std::unique_ptr<Block>> blocks_;
    std::unique_ptr<LayerNorm> ln_f_;
    Tensor *head_w1_, *head_b1_, *head_w2_, *head_b2_;
};

}  // namespace synth
