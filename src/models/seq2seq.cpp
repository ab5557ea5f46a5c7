#include "models/seq2seq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "base/flags.h"

namespace synth {

void Seq2SeqConfig::bind(Flags& f) {
    f.add("d-model", &attn.d_model, "model width d", FlagRole::Model);
    f.add("enc-layers", &enc_layers, "encoder layers", FlagRole::Model);
    f.add("dec-layers", &dec_layers, "decoder layers", FlagRole::Model);
    f.add("heads", &attn.heads, "attention heads H", FlagRole::Model);
    f.add("d-ff", &d_ff, "feed-forward width", FlagRole::Model);
    f.add("max-len", &attn.max_len, "maximum sentence length L in BPE tokens (synthesizers and positions are sized by it)",
          FlagRole::Model);
    f.add("positions", &positions, "learned | sinusoidal position embeddings", FlagRole::Model);
    f.add("init", &init,
          "glorot (Vaswani et al.: Glorot-uniform matrices, unit-scale embeddings and positions) | normal "
          "(N(0, 0.02) everywhere, GPT-2)",
          FlagRole::Model);
    f.add("placement", &placement,
          "both | encoder | decoder: the self-attention the variant replaces; the other side keeps V (dot product)",
          FlagRole::Model);
    f.add("share-embeddings", &share_embeddings, "one embedding table for source and target (joint BPE)",
          FlagRole::Model);
    f.add("dropout", &dropout, "embedding and residual dropout", FlagRole::Training);
    f.add("attn-dropout", &attn.attn_dropout, "dropout on attention probabilities", FlagRole::Training);
    add_setting_flags(f, attn.settings);
}

Seq2Seq::Seq2Seq(ParamStore& store, const Seq2SeqConfig& cfg) : cfg_(cfg) {
    const int d = cfg.attn.d_model, L = cfg.attn.max_len;
    SYNTH_CHECK(cfg.vocab >= 1 && cfg.enc_layers >= 1 && cfg.dec_layers >= 1 && cfg.d_ff >= 1 && d >= 1 && L >= 1,
                "model sizes must be positive");
    SYNTH_CHECK(cfg.dropout >= 0.0f && cfg.dropout < 1.0f, "dropout must be in [0, 1), got ", cfg.dropout);
    SYNTH_CHECK(cfg.positions == "learned" || cfg.positions == "sinusoidal", "unknown positions '", cfg.positions,
                "' (learned, sinusoidal)");
    SYNTH_CHECK(cfg.pad >= 0 && cfg.pad < cfg.vocab, "padding id ", cfg.pad, " outside the vocabulary");
    SYNTH_CHECK(cfg.init == "normal" || cfg.init == "glorot", "unknown init '", cfg.init, "' (normal, glorot)");
    const bool glorot = cfg.init == "glorot";
    const Init weights = glorot ? Init::GlorotUniform : Init::Normal;
    // Token embeddings enter the residual stream at the scale of positions: 0.02 (normal), or
    // N(0, 1/d) times sqrt(d) = unit scale (glorot, see embed()).
    const float emb_std = glorot ? 1.0f / std::sqrt((float)d) : 0.02f, pos_scale = glorot ? 1.0f : 0.02f;
    if (cfg.share_embeddings) {
        src_emb_ = tgt_emb_ = store.weight("emb", {cfg.vocab, d}, InitSpec(Init::Normal, emb_std));
    } else {
        src_emb_ = store.weight("src_emb", {cfg.vocab, d}, InitSpec(Init::Normal, emb_std));
        tgt_emb_ = store.weight("tgt_emb", {cfg.vocab, d}, InitSpec(Init::Normal, emb_std));
    }
    if (cfg.positions == "learned") {
        src_pos_ = store.weight("src_pos", {L, d}, InitSpec(Init::Normal, pos_scale));
        tgt_pos_ = store.weight("tgt_pos", {L, d}, InitSpec(Init::Normal, pos_scale));
    } else {
        // PE(p, 2i) = sin(p / 10000^(2i/d)), PE(p, 2i+1) = cos(p / 10000^(2i/d)), scaled to the
        // magnitude of the token embeddings so neither swamps the other.
        sinusoid_.resize((size_t)L * d);
        for (int p = 0; p < L; ++p)
            for (int i = 0; i < d; ++i) {
                double angle = p / std::pow(10000.0, (double)(i - i % 2) / d);
                sinusoid_[(size_t)p * d + i] = pos_scale * (float)(i % 2 ? std::cos(angle) : std::sin(angle));
            }
        sin_table_.data = sinusoid_.data();
        sin_table_.ndim = 2;
        sin_table_.dims = {L, d, 0, 0};
    }
    SYNTH_CHECK(cfg.placement == "both" || cfg.placement == "encoder" || cfg.placement == "decoder",
                "unknown --placement '", cfg.placement, "' (both, encoder, decoder)");
    BlockConfig block{cfg.attn, cfg.d_ff, cfg.dropout, /*cross=*/false, weights};
    block.attn.weights = weights;
    if (cfg.placement == "decoder") block.attn.variant = "V";
    for (int l = 0; l < cfg.enc_layers; ++l) {
        block.attn.layer = l;
        enc_.push_back(std::make_unique<Block>(store, "enc" + std::to_string(l) + ".", block));
    }
    block.cross = true;
    block.attn.causal = true;
    block.attn.variant = cfg.placement == "encoder" ? "V" : cfg.attn.variant;
    for (int l = 0; l < cfg.dec_layers; ++l) {
        block.attn.layer = l;
        dec_.push_back(std::make_unique<Block>(store, "dec" + std::to_string(l) + ".", block));
    }
    enc_ln_ = std::make_unique<LayerNorm>(store, "enc_ln.", d);
    dec_ln_ = std::make_unique<LayerNorm>(store, "dec_ln.", d);
}

Tensor Seq2Seq::embed(const Tensor& table, const Tensor& pos, const std::vector<int32_t>& ids, int B, int T, int pos0,
                      StepContext& ctx) {
    std::vector<int32_t> p(T);
    std::iota(p.begin(), p.end(), pos0);
    Tensor e = embedding(table, ids, B, T);  // (B, T, d)
    if (cfg_.init == "glorot") e = scale(e, std::sqrt((float)cfg_.attn.d_model));
    Tensor x = add(e, reshape(embedding(pos, p, 1, T), {T, cfg_.attn.d_model}));
    return drop(x, cfg_.dropout, ctx);  // (B, T, d)
}

std::vector<uint8_t> Seq2Seq::pad_mask(const std::vector<int32_t>& ids) const {
    std::vector<uint8_t> m(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) m[i] = ids[i] == cfg_.pad;
    return m;
}

Tensor Seq2Seq::encode(const std::vector<int32_t>& src, int B, int S, StepContext& ctx) {
    const int L = cfg_.attn.max_len;
    SYNTH_CHECK(S <= L, "source sentence of ", S, " tokens (with <eos>) is longer than the model's maximum length L=", L,
                " (positions and the ", cfg_.attn.variant, " attention are sized by L)");
    SYNTH_CHECK((int64_t)src.size() == (int64_t)B * S, "encode: ", src.size(), " ids for a (", B, ", ", S, ") batch");
    std::vector<uint8_t> pad = pad_mask(src);
    Mask mask;
    mask.key_pad = pad.data();
    mask.batch = B;
    Tensor x = embed(*src_emb_, src_pos_ ? *src_pos_ : sin_table_, src, B, S, 0, ctx);
    for (auto& b : enc_) x = b->forward(x, mask, ctx);
    return enc_ln_->forward(x);  // (B, S, d)
}

EncoderMemory Seq2Seq::memory(const Tensor& enc_out, const std::vector<int32_t>& src) {
    EncoderMemory m;
    m.batch = enc_out.dim(0);
    m.len = enc_out.dim(1);
    SYNTH_CHECK((int64_t)src.size() == (int64_t)m.batch * m.len, "memory: ", src.size(), " source ids for an encoder output ",
                enc_out.shape_str());
    m.pad = pad_mask(src);
    for (auto& b : dec_) m.kv.push_back(b->cross()->memory_kv(enc_out));
    return m;
}

Tensor Seq2Seq::decode(const std::vector<int32_t>& tgt_in, int B, int T, const EncoderMemory& mem, StepContext& ctx,
                       std::vector<MixerCache>* caches) {
    const int L = cfg_.attn.max_len, d = cfg_.attn.d_model;
    const int pos0 = caches ? (*caches)[0].len : 0;
    SYNTH_CHECK(!caches || (int)caches->size() == cfg_.dec_layers, "decode: ", caches->size(), " caches for ",
                cfg_.dec_layers, " decoder layers");
    SYNTH_CHECK(pos0 + T <= L, "target of ", pos0 + T, " tokens is longer than the model's maximum length L=", L);
    SYNTH_CHECK(mem.batch == B, "decode: batch ", B, " does not match the encoder memory's batch ", mem.batch);
    // Incremental decoding feeds unpadded prefixes, so only the full pass needs a key-padding
    // mask (causal masking alone already hides right padding from real positions; the padding
    // mask keeps padded query rows well defined too).
    std::vector<uint8_t> pad;
    Mask self_mask;
    self_mask.causal = true;
    if (!caches) {
        pad = pad_mask(tgt_in);
        self_mask.key_pad = pad.data();
        self_mask.batch = B;
    }
    Mask cross_mask;
    cross_mask.key_pad = mem.pad.data();
    cross_mask.batch = B;
    Tensor y = embed(*tgt_emb_, tgt_pos_ ? *tgt_pos_ : sin_table_, tgt_in, B, T, pos0, ctx);
    for (size_t l = 0; l < dec_.size(); ++l) {
        const CrossInput cross{&mem.kv[l], cross_mask};
        y = dec_[l]->forward(y, self_mask, ctx, caches ? &(*caches)[l] : nullptr, &cross);
    }
    Tensor h = dec_ln_->forward(y);                                         // (B, T, d)
    return linear(reshape(h, {B * T, d}), *tgt_emb_, Tensor{}, Transpose::Yes);      // (B*T, V)
}

// ---- batches -----------------------------------------------------------------------------

MtBatch make_batch(const std::vector<TokenPair>& pairs, const std::vector<int>& idx, int pad, int bos, int eos) {
    SYNTH_CHECK(!idx.empty(), "make_batch: empty batch");
    MtBatch b;
    b.B = (int)idx.size();
    for (int i : idx) {
        b.S = std::max(b.S, (int)pairs[i].src.size());
        b.T = std::max(b.T, (int)pairs[i].tgt.size() + 1);
    }
    b.src.assign((size_t)b.B * b.S, pad);
    b.tgt_in.assign((size_t)b.B * b.T, pad);
    b.tgt_out.assign((size_t)b.B * b.T, pad);
    for (int r = 0; r < b.B; ++r) {
        const TokenPair& p = pairs[idx[r]];
        std::copy(p.src.begin(), p.src.end(), b.src.begin() + (size_t)r * b.S);
        int32_t* in = b.tgt_in.data() + (size_t)r * b.T;
        int32_t* out = b.tgt_out.data() + (size_t)r * b.T;
        const int n = (int)p.tgt.size();
        in[0] = bos;
        for (int t = 0; t < n; ++t) in[t + 1] = out[t] = p.tgt[t];
        out[n] = eos;
        b.tgt_tokens += n + 1;
    }
    return b;
}

std::vector<std::vector<int>> token_batches(const std::vector<TokenPair>& pairs, int max_tokens) {
    SYNTH_CHECK(max_tokens >= 1, "batch size in tokens must be positive, got ", max_tokens);
    std::vector<int> order(pairs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return std::make_pair(pairs[a].src.size(), pairs[a].tgt.size()) <
               std::make_pair(pairs[b].src.size(), pairs[b].tgt.size());
    });
    std::vector<std::vector<int>> batches;
    std::vector<int> cur;
    size_t width = 0;  // max(S, T) of cur
    for (int i : order) {
        size_t w = std::max(pairs[i].src.size(), pairs[i].tgt.size() + 1);
        size_t nw = std::max(width, w);
        if (!cur.empty() && (cur.size() + 1) * nw > (size_t)max_tokens) {
            batches.push_back(std::move(cur));
            cur.clear();
            nw = w;
        }
        cur.push_back(i);
        width = nw;
    }
    if (!cur.empty()) batches.push_back(std::move(cur));
    return batches;
}

}  // namespace synth
