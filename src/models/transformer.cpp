#include "models/transformer.h"

#include "base/error.h"
#include "base/flags.h"
#include "engine/gemm/blas.h"

namespace synth {

void LmConfig::bind(Flags& f) {
    f.add("d-model", &attn.d_model, "model width d", FlagRole::Model);
    f.add("layers", &layers, "Transformer blocks", FlagRole::Model);
    f.add("heads", &attn.heads, "attention heads H", FlagRole::Model);
    f.add("d-ff", &d_ff, "feed-forward width", FlagRole::Model);
    f.add("seq", &attn.max_len, "context length = the synthesizers' maximum length L", FlagRole::Model);
    f.add("dropout", &dropout, "residual and embedding dropout", FlagRole::Training);
    f.add("attn-dropout", &attn.attn_dropout, "dropout on attention probabilities", FlagRole::Training);
    add_setting_flags(f, attn.settings);
}

TransformerLM::TransformerLM(ParamStore& store, const LmConfig& cfg) : cfg_(cfg) {
    const int d = cfg.attn.d_model;
    SYNTH_CHECK(cfg.vocab >= 1 && cfg.layers >= 1 && cfg.d_ff >= 1 && d >= 1, "model sizes must be positive");
    SYNTH_CHECK(cfg.dropout >= 0.0f && cfg.dropout < 1.0f, "dropout must be in [0, 1), got ", cfg.dropout);
    tok_emb_ = store.weight("tok_emb", {cfg.vocab, d}, Init::Normal);
    pos_emb_ = store.weight("pos_emb", {cfg.attn.max_len, d}, Init::Normal);
    BlockConfig block{cfg.attn, cfg.d_ff, cfg.dropout, /*cross=*/false, Init::Normal};
    block.attn.causal = true;
    for (int l = 0; l < cfg.layers; ++l) {
        block.attn.layer = l;
        blocks_.push_back(std::make_unique<Block>(store, "block" + std::to_string(l) + ".", block));
    }
    ln_f_ = std::make_unique<LayerNorm>(store, "ln_f.", d);
}

std::vector<SequenceMixer*> TransformerLM::mixers() {
    std::vector<SequenceMixer*> out;
    for (auto& b : blocks_) out.push_back(&b->mixer());
    return out;
}

Tensor TransformerLM::forward(const std::vector<int32_t>& ids, int B, int T, StepContext& ctx,
                              std::vector<MixerCache>* caches) {
    const int pos0 = caches ? (*caches)[0].len : 0, d = cfg_.attn.d_model;
    SYNTH_CHECK(pos0 + T <= cfg_.attn.max_len, "sequence of length ", pos0 + T, " is longer than the model's maximum length ",
                cfg_.attn.max_len);
    std::vector<int32_t> pos(T);
    for (int t = 0; t < T; ++t) pos[t] = pos0 + t;
    Tensor x = add(embedding(*tok_emb_, ids, B, T), reshape(embedding(*pos_emb_, pos, 1, T), {T, d}));
    x = drop(x, cfg_.dropout, ctx);  // (B, T, d)
    Mask causal;
    causal.causal = true;
    for (size_t l = 0; l < blocks_.size(); ++l) x = blocks_[l]->forward(x, causal, ctx, caches ? &(*caches)[l] : nullptr);
    const Bf16Companions companions;  // ln_f's bf16 bits feed the output layer (inference, bf16)
    Tensor h = ln_f_->forward(x);                                                 // (B, T, d)
    return linear(reshape(h, {B * T, d}), *tok_emb_, Tensor{}, Transpose::Yes);  // (B*T, V)
}

int64_t lm_param_formula(const LmConfig& cfg) {
    const int64_t d = cfg.attn.d_model, f = cfg.d_ff;
    const int64_t shared_per_layer = 4 * d                     // two LayerNorms
                                     + d * f + f + f * d + d;  // FFN
    int64_t n = (int64_t)cfg.vocab * d + (int64_t)cfg.attn.max_len * d + 2 * d;
    AttnConfig attn = cfg.attn;
    for (attn.layer = 0; attn.layer < cfg.layers; ++attn.layer)  // a mixer may be sized per layer (kernel sizes)
        n += shared_per_layer + mixer_params(attn);
    return n;
}

}  // namespace synth
