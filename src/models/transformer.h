// transformer.h: the decoder-only language model.
//
//   x = tok_emb[ids] + pos_emb[0..T)        // (B, T, d)
//   for each block: x = Block(x)            // causal self-attention of any variant, FFN (block.h)
//   logits = LN(x) tok_emb^T                // tied output embedding, (B*T, V)
#pragma once

#include <memory>
#include <vector>

#include "models/block.h"

namespace synth {

class Flags;

struct LmConfig {
    int vocab = 65;
    int layers = 4;
    int d_ff = 512;
    float dropout = 0.1f;  // residual and embedding dropout
    AttnConfig attn;       // d_model, heads, max_len (= context length L), variant, its settings

    // The field table: every field a flag, with its role (the variant is chosen per run).
    void bind(Flags& f);
};

class TransformerLM {
public:
    TransformerLM(ParamStore& store, const LmConfig& cfg);
    // ids: B*T token ids (row-major). Positions start at the caches' length when decoding
    // incrementally (caches: one per layer) and at 0 otherwise. Returns logits (B*T, V).
    Tensor forward(const std::vector<int32_t>& ids, int B, int T, StepContext& ctx,
                   std::vector<MixerCache>* caches = nullptr);
    const LmConfig& config() const { return cfg_; }
    std::vector<SequenceMixer*> mixers();

private:
    LmConfig cfg_;
    Tensor *tok_emb_, *pos_emb_;
    std::vector<std::unique_ptr<Block>> blocks_;
    std::unique_ptr<LayerNorm> ln_f_;
};

// Trainable parameters of a TransformerLM from the paper's per-layer formula (docs/variants.md) (mixer_params)
// plus the parts every variant shares (embeddings, LayerNorms, FFN).
int64_t lm_param_formula(const LmConfig& cfg);

}  // namespace synth
