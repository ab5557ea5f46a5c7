// D: the Dense Synthesizer. Each position predicts its own row of logits from itself alone
// (docs/variants.md): B_i = W2_h ReLU(W1 x_i + b1)_h + b2_h, logits[i, j] = B_i[j], j < Tk.
#include "attention/variant.h"

namespace synth {
namespace {

class Dense : public LogitsSource {
public:
    Dense(ParamStore& s, const std::string& p, const AttnConfig& c) : H_(c.heads) {
        const int d = c.d_model, D = d / c.heads, L = c.max_len;
        const int w2_heads = c.settings.flag("share-w2") ? 1 : c.heads;  // mesh-tensorflow shares W2 over heads
        w1_ = s.weight(p + "D.w1", {d, d}, c.weights);
        b1_ = s.bias(p + "D.b1", {d});
        w2_ = s.weight(p + "D.w2", {w2_heads, D, L}, c.weights);
        b2_ = s.bias(p + "D.b2", {w2_heads, L});
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        const int Tk = mask.q_offset + x.dim(1);
        Tensor h = linear_relu(x, *w1_, *b1_);             // (B, Tq, H*D), read per head in place
        return head_linear(h, H_, *w2_, *b2_, Tk, mask);  // (B, H, Tq, Tk); causal: no work above the diagonal
    }

private:
    int H_;
    Tensor *w1_, *b1_, *w2_, *b2_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(D, [] {
    VariantInfo v;
    v.name = "D";
    v.description = "Dense Synthesizer: each position's row of logits from a 2-layer MLP of that position";
    v.settings = {Setting::boolean("share-w2", false, "one W2 and b2 for all heads (as mesh-tensorflow)")};
    v.param_count = [](const AttnConfig& c) {
        const int64_t d = c.d_model, D = d / c.heads, L = c.max_len;
        const int64_t w2_heads = c.settings.flag("share-w2") ? 1 : c.heads;
        return d * d + d + w2_heads * (D * L + L);  // W1, b1, W2, b2
    };
    v.make_source = source_factory<Dense>();
    return v;
}());

}  // namespace synth
