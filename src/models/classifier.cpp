#include "models/classifier.h"

#include "base/error.h"
#include "base/flags.h"

namespace synth {

void ClassifierConfig::bind(Flags& f) {
    f.add("d-model", &attn.d_model, "model width d", FlagRole::Model);
    f.add("layers", &layers, "encoder blocks", FlagRole::Model);
    f.add("heads", &attn.heads, "attention heads H", FlagRole::Model);
    f.add("d-ff", &d_ff, "feed-forward width, and the classifier head's hidden width (LRA's mlp_dim)", FlagRole::Model);
    f.add("max-len", &attn.max_len,
          "maximum sequence length L in tokens, [CLS] included (positions and the synthesizers are sized by it)",
          FlagRole::Model);
    f.add("pool", &pool, "cls (the [CLS] position's output, LRA's CLS) | mean (the mean over non-padding positions)",
          FlagRole::Model);
    f.add("dropout", &dropout, "embedding and residual dropout", FlagRole::Training);
    f.add("attn-dropout", &attn.attn_dropout, "dropout on attention probabilities", FlagRole::Training);
    add_setting_flags(f, attn.settings);
}

Tensor pool_sequence(const Tensor& h, const std::vector<uint8_t>& pad, const std::string& mode) {
    SYNTH_CHECK(h.ndim == 3 && (int64_t)pad.size() == (int64_t)h.dim(0) * h.dim(1), "pool_sequence: ", pad.size(),
                " padding flags for ", h.shape_str());
    const int B = h.dim(0), T = h.dim(1), d = h.dim(2);
    if (mode == "cls") return reshape(slice_seq(h, 0, 1), {B, d});
    SYNTH_CHECK(mode == "mean", "unknown --pool '", mode, "' (cls, mean)");
    // Weights 1/n_b on the n_b non-padding positions of row b, 0 on padding: a one-head
    // attention with fixed probabilities.
    Tensor w = zeros({B, 1, 1, T}, false);  // (B, 1, 1, T)
    for (int b = 0; b < B; ++b) {
        int n = 0;
        for (int t = 0; t < T; ++t) n += !pad[(size_t)b * T + t];
        SYNTH_CHECK(n > 0, "pool_sequence: row ", b, " of the batch is all padding");
        for (int t = 0; t < T; ++t) w.data[(size_t)b * T + t] = pad[(size_t)b * T + t] ? 0.0f : 1.0f / n;
    }
    return reshape(head_mix(w, h), {B, d});
}

Classifier::Classifier(ParamStore& store, const ClassifierConfig& cfg) : cfg_(cfg) {
    const int d = cfg.attn.d_model;
    SYNTH_CHECK(cfg.vocab >= 1 && cfg.classes >= 2 && cfg.layers >= 1 && cfg.d_ff >= 1 && d >= 1 && cfg.attn.max_len >= 1,
                "model sizes must be positive (and at least 2 classes)");
    SYNTH_CHECK(cfg.dropout >= 0.0f && cfg.dropout < 1.0f, "dropout must be in [0, 1), got ", cfg.dropout);
    SYNTH_CHECK(cfg.pool == "cls" || cfg.pool == "mean", "unknown --pool '", cfg.pool, "' (cls, mean)");
    SYNTH_CHECK(cfg.pad >= 0 && cfg.pad < cfg.vocab, "padding id ", cfg.pad, " outside the vocabulary");
    tok_emb_ = store.weight("tok_emb", {cfg.vocab, d}, Init::Normal);
    pos_emb_ = store.weight("pos_emb", {cfg.attn.max_len, d}, Init::Normal);
    BlockConfig block{cfg.attn, cfg.d_ff, cfg.dropout, /*cross=*/false, Init::Normal};
    block.attn.causal = false;  // an encoder: every position sees the whole sequence
    for (int l = 0; l < cfg.layers; ++l) {
        block.attn.layer = l;
        blocks_.push_back(std::make_unique<Block>(store, "block" + std::to_string(l) + ".", block));
    }
    ln_f_ = std::make_unique<LayerNorm>(store, "ln_f.", d);
    head_w1_ = store.weight("head.w1", {d, cfg.d_ff}, Init::Normal);
    head_b1_ = store.bias("head.b1", {cfg.d_ff});
    head_w2_ = store.weight("head.w2", {cfg.d_ff, cfg.classes}, Init::Normal);
    head_b2_ = store.bias("head.b2", {cfg.classes});
}

Tensor Classifier::forward(const std::vector<int32_t>& ids, int B, int T, StepContext& ctx) {
    const int d = cfg_.attn.d_model;
    SYNTH_CHECK(T <= cfg_.attn.max_len, "sequence of ", T, " tokens is longer than the model's maximum length L=",
                cfg_.attn.max_len, " (positions and the ", cfg_.attn.variant, " attention are sized by L)");
    SYNTH_CHECK((int64_t)ids.size() == (int64_t)B * T, "classifier: ", ids.size(), " ids for a (", B, ", ", T, ") batch");
    std::vector<uint8_t> pad(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) pad[i] = ids[i] == cfg_.pad;
    std::vector<int32_t> pos(T);
    for (int t = 0; t < T; ++t) pos[t] = t;
    Tensor x = add(embedding(*tok_emb_, ids, B, T), reshape(embedding(*pos_emb_, pos, 1, T), {T, d}));
    x = drop(x, cfg_.dropout, ctx);  // (B, T, d)
    Mask mask;
    mask.key_pad = pad.data();
    mask.batch = B;
    for (auto& b : blocks_) x = b->forward(x, mask, ctx);
    const Tensor pooled = pool_sequence(ln_f_->forward(x), pad, cfg_.pool);  // (B, d)
    return linear(linear_relu(pooled, *head_w1_, *head_b1_), *head_w2_, *head_b2_);  // (B, classes)
}

}  // namespace synth
