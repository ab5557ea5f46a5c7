// DynamicConv: Wu et al. (2019)'s dynamic convolution as a self-attention replacement
// (docs/variants.md; fairseq's DynamicConv1dTBC with weight_softmax): each position predicts
// its own kernel of K taps per head from its GLU output, w_i = softmax_K(u_i W_k) with W_k
// (d, H K) and no bias (fairseq's weight_linear), inside the layer of attention/conv_layer.h.
// It is a Dense Synthesizer whose predicted row of logits covers a window of K keys, not L.
#include "attention/conv_layer.h"

namespace synth {
namespace {

class DynamicConv : public ConvLayer {
public:
    DynamicConv(ParamStore& s, const std::string& p, const AttnConfig& c) : ConvLayer(s, p, "DynamicConv", c) {
        w_kernel_ = s.weight(p + "DynamicConv.w_kernel", {c.d_model, c.heads * K_}, c.weights);
    }

private:
    Tensor kernel(const Tensor& u) override {
        const Tensor logits = linear(u, *w_kernel_, Tensor{});                          // (B, Tq, H*K)
        return softmax(reshape(logits, {u.dim(0), u.dim(1), cfg_.heads, K_}), Mask{});  // (B, Tq, H, K)
    }

    Tensor* w_kernel_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(DynamicConv, [] {
    VariantInfo v;
    v.name = "DynamicConv";
    v.description = "dynamic convolution (Wu et al. 2019): each position predicts its own softmax-normalised kernel";
    v.settings = {conv_kernels_setting()};
    v.sized_by_L = false;
    v.test_len = 9;  // the default kernels of layers 0 and 1 (3 and 7) narrower than the tests' sequences
    v.param_count = [](const AttnConfig& c) {
        return conv_layer_params(c) + (int64_t)c.d_model * c.heads * conv_kernel_size(c);  // + W_k (d, H K)
    };
    v.make_mixer = [](ParamStore& s, const std::string& p, const AttnConfig& c) -> std::unique_ptr<SequenceMixer> {
        return std::make_unique<DynamicConv>(s, p, c);
    };
    return v;
}());

}  // namespace synth
