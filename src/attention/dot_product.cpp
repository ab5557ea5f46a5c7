// V: the vanilla Transformer's dot product, logits = Q K^T / sqrt(d_h) (docs/variants.md).
#include <cmath>

#include "attention/variant.h"

namespace synth {
namespace {

class DotProduct : public LogitsSource {
public:
    DotProduct(ParamStore& s, const std::string& p, const AttnConfig& c) : H_(c.heads) {
        w_q_ = s.weight(p + "V.w_q", {c.d_model, c.d_model}, c.weights);
        w_k_ = s.weight(p + "V.w_k", {c.d_model, c.d_model}, c.weights);
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor* key_cache) override {
        const int D = x.dim(2) / H_;
        // The 1/sqrt(d_h) scale rides on Q's GEMM: the same logits, no extra pass.
        Tensor q = linear(x, *w_q_, Tensor{}, Transpose::No, 1.0f / std::sqrt((float)D));  // (B, Tq, d)
        Tensor k = linear(x, *w_k_, Tensor{});                                      // (B, Tq, d)
        if (key_cache) {
            if (key_cache->data) k = concat_seq(*key_cache, k);  // (B, Tk, d)
            *key_cache = k;
        }
        return head_scores(q, k, H_, mask);  // (B, H, Tq, Tk); causal: no work above the diagonal
    }

private:
    int H_;
    Tensor *w_q_, *w_k_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(V, [] {
    VariantInfo v;
    v.name = "V";
    v.description = "vanilla dot-product attention, Q K^T / sqrt(d_h)";
    v.sized_by_L = false;
    v.param_count = [](const AttnConfig& c) { return 2 * (int64_t)c.d_model * c.d_model; };  // W_q, W_k
    v.make_source = source_factory<DotProduct>();
    return v;
}());

}  // namespace synth
