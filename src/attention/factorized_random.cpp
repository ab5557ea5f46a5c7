// FR: the Factorized Random Synthesizer (docs/variants.md): each head's L x L logits matrix is
// the rank-k product R1_h R2_h^T, with R1_h, R2_h of shape (L, k).
#include <cmath>

#include "attention/random_init.h"
#include "attention/variant.h"

namespace synth {
namespace {

class FactorizedRandom : public LogitsSource {
public:
    FactorizedRandom(ParamStore& s, const std::string& p, const AttnConfig& c) : k_(c.settings.integer("fr-rank")) {
        const int H = c.heads, L = c.max_len;
        // glorot: over each head's (L, k) factor (fans 0 = the last two dims).
        r1_ = s.weight(p + "FR.r1", {H, L, k_}, random_init(c, 0, 0));
        r2_ = s.weight(p + "FR.r2", {H, L, k_}, random_init(c, 0, 0));
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        const int Tq = x.dim(1), Tk = mask.q_offset + Tq;
        return bmm(crop(*r1_, Tq, k_, mask.q_offset), crop(*r2_, Tk, k_), Transpose::No, Transpose::Yes);  // (1, H, Tq, Tk)
    }

private:
    int k_;
    Tensor *r1_, *r2_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(FR, [] {
    VariantInfo v;
    v.name = "FR";
    v.description = "Factorized Random: each head's logits are a learned rank-k product R1 R2^T";
    v.settings = {Setting::integer("fr-rank", 8, "rank k of R1 R2^T", Setting::Bound::Positive), random_init_setting()};
    v.param_count = [](const AttnConfig& c) {
        return 2 * (int64_t)c.heads * c.max_len * c.settings.integer("fr-rank");  // R1, R2
    };
    v.parity_std = [](const std::string&, const Shape& shape) {  // (R1 R2^T)[i, j] of O(1)
        return 1.0f / std::sqrt(std::sqrt((float)shape.back()));
    };
    v.make_source = source_factory<FactorizedRandom>();
    return v;
}());

}  // namespace synth
