// LightConv: Wu et al. (2019)'s lightweight convolution as a self-attention replacement
// (docs/variants.md; fairseq's LightweightConv1dTBC with weight_softmax): one learned kernel
// of K taps per head, softmax-normalised over K, shared by the head's d/H channels and by every
// position, inside the GLU / output projection layer of attention/conv_layer.h.
#include "attention/conv_layer.h"

namespace synth {
namespace {

class LightConv : public ConvLayer {
public:
    LightConv(ParamStore& s, const std::string& p, const AttnConfig& c) : ConvLayer(s, p, "LightConv", c) {
        // fairseq draws its (H, 1, K) weight Glorot-uniform with torch's fans of that shape: (K, H K).
        const InitSpec init = c.weights == Init::GlorotUniform ? InitSpec::glorot(K_, (int64_t)c.heads * K_)
                                                               : InitSpec(c.weights);
        kernel_ = s.weight(p + "LightConv.kernel", {c.heads, K_}, init);
    }

private:
    Tensor kernel(const Tensor&) override {
        return softmax(reshape(*kernel_, {1, 1, cfg_.heads, K_}), Mask{});  // (1, 1, H, K)
    }

    Tensor* kernel_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(LightConv, [] {
    VariantInfo v;
    v.name = "LightConv";
    v.description = "lightweight convolution (Wu et al. 2019): a softmax-normalised kernel per head, shared over time";
    v.settings = {conv_kernels_setting()};
    v.sized_by_L = false;
    v.test_len = 9;  // the default kernels of layers 0 and 1 (3 and 7) narrower than the tests' sequences
    v.param_count = [](const AttnConfig& c) {
        return conv_layer_params(c) + (int64_t)c.heads * conv_kernel_size(c);  // + the (H, K) kernel
    };
    v.make_mixer = [](ParamStore& s, const std::string& p, const AttnConfig& c) -> std::unique_ptr<SequenceMixer> {
        return std::make_unique<LightConv>(s, p, c);
    };
    return v;
}());

}  // namespace synth
