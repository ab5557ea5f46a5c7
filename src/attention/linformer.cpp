// Linformer (Wang et al., 2020, "Linformer: Self-Attention with Linear Complexity"): dot-product
// attention whose keys and values are first projected along the sequence, from n positions to
// k slots (docs/variants.md):
//
//   head_h = softmax(Q_h (E_h K_h)^T / sqrt(d_h)) (F_h V_h),   E_h, F_h (k, n)
//
// so each query attends to k learned mixtures of positions instead of to each position. The
// projections are sized by the maximum length L = n (a shorter sequence uses their first T
// columns, as LRA's implementation does) and every slot mixes the whole sequence, so the mixer
// is encoder-only: a causal Linformer would need a different projection per query prefix.
//
// --linformer-share picks Wang et al.'s sharing: "none" (E_h, F_h per head), "headwise" (one E
// and one F for all heads) or "kv" (one projection for keys, values and heads, as LRA's code).
// Padding keys are zeroed before the projection, so they add nothing to any slot (LRA's code
// ignores the padding mask).
#include <cmath>

#include "attention/variant.h"
#include "base/error.h"

namespace synth {
namespace {

class Linformer : public SequenceMixer {
public:
    Linformer(ParamStore& s, const std::string& p, const AttnConfig& c) : H_(c.heads), L_(c.max_len) {
        SYNTH_CHECK(c.heads >= 1 && c.d_model % c.heads == 0, "heads=", c.heads, " must divide d_model=", c.d_model);
        const int d = c.d_model, k = c.settings.integer("linformer-k");
        const std::string& share = c.settings.text("linformer-share");
        per_head_ = share == "none";
        w_q_ = s.weight(p + "Linformer.w_q", {d, d}, c.weights);
        w_k_ = s.weight(p + "Linformer.w_k", {d, d}, c.weights);
        w_v_ = s.weight(p + "w_v", {d, d}, c.weights);
        w_o_ = s.weight(p + "w_o", {d, d}, c.weights);
        const int heads = per_head_ ? c.heads : 1;
        e_ = s.weight(p + "Linformer.e", {heads, k, L_}, c.weights);
        f_ = share == "kv" ? e_ : s.weight(p + "Linformer.f", {heads, k, L_}, c.weights);
        attn_dropout_ = c.attn_dropout;
    }

    Tensor forward(const Tensor& x_in, Mask mask, StepContext& ctx, MixerCache* cache) override {
        SYNTH_CHECK(!cache && !mask.causal, "Linformer is encoder-only: no causal mask, no incremental decoding");
        const int T = x_in.dim(1), D = x_in.dim(2) / H_;
        SYNTH_CHECK(T <= L_, "sequence of length ", T, " is longer than the maximum length L=", L_,
                    " of the Linformer projections (raise the model's L)");
        const Tensor x = mask.key_pad ? zero_padding(x_in, mask) : x_in;  // (B, T, d)
        Tensor q = linear(x, *w_q_, Tensor{}, Transpose::No, 1.0f / std::sqrt((float)D));  // (B, T, d)
        Tensor kp = project(linear(x, *w_k_, Tensor{}), *e_);                              // (B, k, d)
        Tensor vp = project(linear(x, *w_v_, Tensor{}), *f_);                              // (B, k, d)
        Tensor p = softmax(head_scores(q, kp, H_), Mask{});  // (B, H, T, k): every slot is a real key
        if (ctx.train) {
            const uint64_t counter = ctx.next_counter();  // drawn even at rate 0, as SynthesizerAttention
            if (attn_dropout_ > 0.0f) p = dropout(p, attn_dropout_, ctx.seed, counter);
        }
        return linear(head_mix(p, vp), *w_o_, Tensor{});  // (B, T, d)
    }

private:
    // Projects y (B, T, d) along the sequence with the first T columns of proj (Hp, k, L):
    // (B, k, d), each head's columns by its own (Hp = H) or the shared (Hp = 1) projection.
    Tensor project(const Tensor& y, const Tensor& proj) const {
        const int B = y.dim(0), T = y.dim(1), d = y.dim(2), k = proj.dim(1);
        Tensor e = crop(proj, k, T);  // (1, Hp, k, T)
        if (!per_head_) return reshape(bmm(e, reshape(y, {B, 1, T, d}), Transpose::No, Transpose::No), {B, k, d});
        return merge_heads(bmm(e, split_heads(y, H_), Transpose::No, Transpose::No));  // (B, H, k, D) -> (B, k, d)
    }

    // x with the rows of padding positions set to 0 (their keys and values are then 0).
    static Tensor zero_padding(const Tensor& x, const Mask& mask) {
        const int B = x.dim(0), T = x.dim(1), d = x.dim(2);
        SYNTH_CHECK(mask.batch == B, "Linformer: padding mask of batch ", mask.batch, " for a batch of ", B);
        Tensor keep = zeros({B, T, d}, /*with_grad=*/false);  // (B, T, d) of 0 / 1
        for (int b = 0; b < B; ++b)
            for (int t = 0; t < T; ++t)
                if (!mask.key_pad[(int64_t)b * T + t])
                    for (int c = 0; c < d; ++c) keep.data[((int64_t)b * T + t) * d + c] = 1.0f;
        return mul(x, keep);
    }

    int H_, L_;
    bool per_head_;
    float attn_dropout_;
    Tensor *w_q_, *w_k_, *w_v_, *w_o_, *e_, *f_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(Linformer, [] {
    VariantInfo v;
    v.name = "Linformer";
    v.description = "Linformer: dot-product attention over keys and values projected along the sequence to k slots "
                    "(encoder-only)";
    v.settings = {Setting::integer("linformer-k", 64, "projected length k (Wang et al.'s k)", Setting::Bound::Positive),
                  Setting::choice("linformer-share", "headwise",
                                  "sharing of the projections E, F: none (per head), headwise (one E, F for all "
                                  "heads) or kv (E = F, as LRA's code)",
                                  {"none", "headwise", "kv"})};
    v.causal_ok = false;
    v.param_count = [](const AttnConfig& c) {
        const int64_t d = c.d_model, k = c.settings.integer("linformer-k"), L = c.max_len;
        const std::string& share = c.settings.text("linformer-share");
        const int64_t projections = share == "none" ? 2 * c.heads : share == "headwise" ? 2 : 1;
        return 4 * d * d + projections * k * L;  // W_q, W_k, W_v, W_o; E (and F)
    };
    v.make_mixer = [](ParamStore& s, const std::string& p, const AttnConfig& c) -> std::unique_ptr<SequenceMixer> {
        return std::make_unique<Linformer>(s, p, c);
    };
    return v;
}());

}  // namespace synth
