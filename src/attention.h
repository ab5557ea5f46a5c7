// attention.h: self-attention whose logits come from pluggable Synthesizer components.
//
// PAPER.md: every variant only changes how the n x n matrix of attention *logits* of a
// head is produced. A LogitsSource is one such producer (V, D, R, Rfix, FR, FD). A
// SelfAttention layer owns one or more sources; with two or more it mixes their logits
// with per-(layer, head) weights softmax(w) *before* one masked softmax, then applies one
// shared value projection and the output projection:
//
//   logits_c = source_c(x)                         // (B or 1, H, Tq, Tk) each
//   logits   = sum_c softmax(w_h)_c * logits_c     // mixture inside the softmax
//   P        = softmax(logits + mask)              // causal / padding as additive -inf
//   out      = merge_heads(P @ split_heads(x W_v)) W_o
//
// Adding a variant = one LogitsSource subclass + one line in make_source() + tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ops.h"
#include "params.h"

namespace synth {

struct AttnConfig {
    int d_model = 128;
    int heads = 4;
    int max_len = 128;          // L: R, FR, D and FD are sized by it
    std::string variant = "V";  // "V", "R", "D+V", ...
    bool share_w2 = false;      // D: one W2 for all heads (as mesh-tensorflow does)
    int fr_rank = 8;            // FR: k
    int fd_a = 0;               // FD: a (0 = divisor of L nearest sqrt(L))
    std::string r_init = "normal";  // R/FR init: normal (N(0, 0.02)) or glorot
    Init weights = Init::Normal;    // the other weight matrices: N(0, 0.02), or GlorotUniform
    float attn_dropout = 0.0f;
};

// Per-step context: train/eval mode and the dropout stream (see ops.h dropout()).
struct Ctx {
    bool train = false;
    uint64_t seed = 0;
    uint64_t step = 0;
    uint64_t calls = 0;  // dropout calls so far in this step
    uint64_t next_counter() { return step * 1000003ULL + calls++; }
};

// Incremental decoding state of one self-attention layer: everything earlier positions
// computed that later positions need. Tensors are (B, t, C), grown by concat_seq.
struct AttnCache {
    int len = 0;                  // positions already processed
    Tensor values;                // x W_v of earlier positions, (B, len, d)
    std::vector<Tensor> keys;     // per source: its cached keys (V: x W_k), or empty
};

// Parses "R+V" into {"R", "V"}; throws on unknown names, duplicates or empty parts.
std::vector<std::string> parse_variant(const std::string& variant);
// Every component name synth knows, in canonical order.
const std::vector<std::string>& known_components();
// FD's default a for length L: the divisor of L nearest to sqrt(L) (128 -> 8).
int default_fd_a(int L);

class LogitsSource {
public:
    virtual ~LogitsSource() = default;
    // x_new (B, Tq, d): the layer inputs at positions [q0, q0 + Tq), q0 = mask.q_offset.
    // Returns logits (B or 1, H, Tq, Tk) with Tk = q0 + Tq. With mask.causal a source may
    // skip the entries above the causal diagonal (V and D do, in blocks): they then hold
    // unspecified but finite values (the product, the bias or 0), since the softmax masks
    // them but a mixture's weight gradient still multiplies them by their zero gradient.
    // `key_cache` is this source's slot in AttnCache (nullptr when not decoding incrementally).
    virtual Tensor logits(const Tensor& x_new, const Mask& mask, Tensor* key_cache) = 0;
};

std::unique_ptr<LogitsSource> make_source(const std::string& name, ParamStore& store, const std::string& prefix,
                                          const AttnConfig& cfg);

class SelfAttention {
public:
    SelfAttention(ParamStore& store, const std::string& prefix, const AttnConfig& cfg);
    // x (B, T, d) -> (B, T, d). With a cache, x holds only the new positions, which
    // continue the cached ones; the mask's q_offset is set from the cache.
    Tensor forward(const Tensor& x, Mask mask, Ctx& ctx, AttnCache* cache = nullptr);
    // The mixture weights alpha = softmax(w) of head h (empty for a single source).
    std::vector<float> alphas(int h) const;
    const std::vector<std::string>& components() const { return names_; }

private:
    AttnConfig cfg_;
    std::vector<std::string> names_;
    std::vector<std::unique_ptr<LogitsSource>> sources_;
    Tensor *w_mix_ = nullptr, *w_v_, *w_o_;
};

// Encoder-decoder attention: always dot product (PAPER.md: synthesizers replace
// self-attention only). Keys and values come from `memory`, padded by mask.key_pad.
class CrossAttention {
public:
    CrossAttention(ParamStore& store, const std::string& prefix, int d_model, int heads, float attn_dropout,
                   Init weights = Init::Normal);
    // Projects the encoder output to keys and values once: (B, S, d) each.
    std::pair<Tensor, Tensor> memory_kv(const Tensor& memory);
    // x (B, T, d) queries against precomputed (keys, values).
    Tensor forward(const Tensor& x, const std::pair<Tensor, Tensor>& kv, const Mask& mask, Ctx& ctx);

private:
    int d_, H_;
    float attn_dropout_;
    Tensor *w_q_, *w_k_, *w_v_, *w_o_;
};

// The number of parameters PAPER.md's table gives for the logits of one layer.
int64_t paper_logit_params(const std::string& variant, const AttnConfig& cfg);

}  // namespace synth
