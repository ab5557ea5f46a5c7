// seq2seq.h: the pre-LayerNorm encoder-decoder Transformer for translation, and the padded
// token-count batches it trains on.
//
//   encoder:  x = emb[src] + pos[0..S)                  // (B, S, d)
//             per layer: x = Block(x)                   // key-padding mask; any variant (block.h)
//             memory = LN(x)
//   decoder:  y = emb[tgt_in] + pos[0..T)               // tgt_in = <bos> y_1 .. y_n
//             per layer: y = Block(y, memory)           // causal + key-padding self-attention of any
//                                                       // variant, then dot-product cross-attention
//             logits = LN(y) emb_tgt^T                  // tied output embedding, (B*T, V)
//
// docs/variants.md: the Synthesizer variant replaces encoder AND decoder self-attention (as in
// the paper), or only one of them with --placement (V in the other); the encoder-decoder
// attention stays dot product. Source and target share one embedding table by
// default (one joint BPE vocabulary); a flag gives each side its own. Positions are learned
// (one (L, d) table per side) or fixed sinusoids (Vaswani et al. 2017, section 3.5); either way
// L bounds the length, so a longer sentence is an error for every variant, V included.
//
// Sequence layout (ids from src/text/bpe.h; pad = 0 is the padding id everywhere):
//   source   x_1 .. x_m <eos>           (the encoder sees the end of the sentence)
//   decoder  <bos> y_1 .. y_n  ->  predicts  y_1 .. y_n <eos>
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/block.h"

namespace synth {

class Flags;

struct Seq2SeqConfig {
    int vocab = 8000;          // joint BPE vocabulary (both sides)
    int enc_layers = 3, dec_layers = 3;
    int d_ff = 512;
    float dropout = 0.1f;      // embedding and residual dropout
    bool share_embeddings = true;
    std::string positions = "learned";  // learned | sinusoidal
    int pad = 0;               // the padding id (Bpe::kPad)
    // normal: every weight N(0, 0.02) (GPT-2). glorot (Vaswani et al.): Glorot-uniform weight
    // matrices (self-attention's included, but not the random synthesizers', which follow
    // --r-init), embeddings N(0, 1/d) multiplied by sqrt(d) on input (unit scale; the tied
    // output layer is not scaled) and positions at unit scale. It trains much faster at d=128
    // (docs/performance.md).
    std::string init = "glorot";
    AttnConfig attn;           // d_model, heads, max_len L, variant, its settings, attention dropout
    std::string placement = "both";  // both | encoder | decoder: whose self-attention is attn.variant (V elsewhere)

    // The field table: every field but vocab (the BPE's) and pad a flag, with its role.
    void bind(Flags& f);
};

// What the decoder reads from the encoder: the cross-attention keys and values of every
// decoder layer (computed once per batch) and the source padding mask.
struct EncoderMemory {
    std::vector<std::pair<Tensor, Tensor>> kv;  // per decoder layer: (keys, values), each (B, S, d)
    std::vector<uint8_t> pad;                   // (B, S), 1 = padding position
    int batch = 0, len = 0;
};

class Seq2Seq {
public:
    Seq2Seq(ParamStore& store, const Seq2SeqConfig& cfg);

    // src: B*S ids, row-major, each row padded with cfg.pad on the right. Returns the
    // encoder output (B, S, d), after the final LayerNorm. Throws if S > L.
    Tensor encode(const std::vector<int32_t>& src, int B, int S, StepContext& ctx);
    // Projects the encoder output to every decoder layer's cross-attention keys and values.
    EncoderMemory memory(const Tensor& enc_out, const std::vector<int32_t>& src);

    // tgt_in: B*T decoder inputs. Returns logits (B*T, V).
    // Without caches: a full (teacher-forced) pass, causal + key-padding mask from tgt_in.
    // With caches (one per decoder layer): tgt_in holds only the next T positions of
    // unpadded sequences, continuing the cached ones; positions start at the caches' length.
    Tensor decode(const std::vector<int32_t>& tgt_in, int B, int T, const EncoderMemory& mem, StepContext& ctx,
                  std::vector<MixerCache>* caches = nullptr);

    const Seq2SeqConfig& config() const { return cfg_; }

private:
    // emb[ids] + pos[pos0 .. pos0+T), with embedding dropout: (B, T, d).
    Tensor embed(const Tensor& table, const Tensor& pos, const std::vector<int32_t>& ids, int B, int T, int pos0,
                 StepContext& ctx);
    std::vector<uint8_t> pad_mask(const std::vector<int32_t>& ids) const;

    Seq2SeqConfig cfg_;
    Tensor *src_emb_, *tgt_emb_;          // the same table when share_embeddings
    Tensor *src_pos_ = nullptr, *tgt_pos_ = nullptr;  // learned positions
    std::vector<float> sinusoid_;         // (L, d) fixed table, when positions = sinusoidal
    Tensor sin_table_;
    std::vector<std::unique_ptr<Block>> enc_, dec_;
    std::unique_ptr<LayerNorm> enc_ln_, dec_ln_;
};

// ---- batches -----------------------------------------------------------------------------

// One tokenized sentence pair: src = x_1 .. x_m <eos>, tgt = y_1 .. y_n (no <bos>/<eos>).
struct TokenPair {
    std::vector<int32_t> src, tgt;
};

// A padded training batch: B pairs, src (B, S) and decoder input/output (B, T), T = n_max + 1.
struct MtBatch {
    int B = 0, S = 0, T = 0;
    std::vector<int32_t> src, tgt_in, tgt_out;  // tgt_out is padded with pad (ignored by the loss)
    int64_t tgt_tokens = 0;                     // non-padding targets
};

MtBatch make_batch(const std::vector<TokenPair>& pairs, const std::vector<int>& idx, int pad, int bos, int eos);

// Length-bucketed batches (fairseq-style): pair indices sorted by (source, target) length and
// cut greedily into batches whose padded size B * max(S, T) stays within max_tokens (a single
// pair longer than that still forms a batch of one). The order inside the list is by length;
// shuffle it per epoch.
std::vector<std::vector<int>> token_batches(const std::vector<TokenPair>& pairs, int max_tokens);

}  // namespace synth
