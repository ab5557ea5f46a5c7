// R and Rfix: the Random Synthesizer (docs/variants.md). Each head's logits are an L x L
// matrix of its own, independent of the input: logits[i, j] = R_h[i, j]. R learns it; Rfix
// keeps its initial random values (a fixed attention pattern).
#include "attention/random_init.h"
#include "attention/variant.h"

namespace synth {
namespace {

class Random : public LogitsSource {
public:
    Random(ParamStore& s, const std::string& name, const AttnConfig& c, Trainable trainable) {
        const int H = c.heads, L = c.max_len;
        r_ = s.add(name + ".r", {H, L, L}, random_init(c, /*fan_in=*/(int64_t)H * L, /*fan_out=*/(int64_t)L * L),
                   Decay::Yes, trainable);
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        // Independent of x's content: (1, H, Tq, Tk), broadcast over the batch. Incremental
        // decoding reads rows [q0, q0 + Tq).
        const int q0 = mask.q_offset;
        return crop(*r_, x.dim(1), q0 + x.dim(1), q0);
    }

private:
    Tensor* r_;
};

VariantInfo random_variant(const std::string& name, Trainable trainable) {
    VariantInfo v;
    v.name = name;
    v.description = trainable == Trainable::Yes ? "Random Synthesizer: a learned L x L logits matrix per head"
                                                : "Random Synthesizer, fixed: R keeps its random initial values";
    v.settings = {random_init_setting()};
    v.param_count = [trainable](const AttnConfig& c) {
        return trainable == Trainable::Yes ? (int64_t)c.heads * c.max_len * c.max_len : 0;  // R (trainable ones)
    };
    v.parity_std = [](const std::string&, const Shape&) { return 1.0f; };  // logits of O(1)
    v.make_source = [name, trainable](ParamStore& s, const std::string& p,
                                      const AttnConfig& c) -> std::unique_ptr<LogitsSource> {
        return std::make_unique<Random>(s, p + name, c, trainable);
    };
    return v;
}

}  // namespace

SYNTH_REGISTER_VARIANT(R, random_variant("R", Trainable::Yes));
SYNTH_REGISTER_VARIANT(Rfix, random_variant("Rfix", Trainable::No));

}  // namespace synth
