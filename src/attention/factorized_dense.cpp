// FD: the Factorized Dense Synthesizer (docs/variants.md). On the same hidden layer as D,
// two per-head maps give A_i (a values) and B_i (b values, a * b = L), and
// logits[i, j] = A_i[j mod a] * B_i[floor(j / a)].
#include <cmath>

#include "attention/variant.h"
#include "base/error.h"

namespace synth {
namespace {

// a: --fd-a, or the divisor of L nearest sqrt(L) (128 -> 8). A prime L leaves only a = 1 or
// L, where FD degenerates into a rescaled D: that must be asked for explicitly.
int fd_a(const AttnConfig& c) {
    const int L = c.max_len, given = c.settings.integer("fd-a");
    int a = given;
    if (a == 0) {
        a = 1;
        for (int k = 1; k <= L; ++k)
            if (L % k == 0 && std::fabs(k - std::sqrt((double)L)) < std::fabs(a - std::sqrt((double)L))) a = k;
        SYNTH_CHECK(a > 1 || L <= 3, "FD: L=", L, " has no divisor but 1 and itself, so FD would be a rescaled D; "
                    "choose an L with a divisor near sqrt(L) or give --fd-a=1 explicitly");
    }
    SYNTH_CHECK(L % a == 0, "FD: --fd-a=", a, " must divide the maximum length L=", L);
    return a;
}

class FactorizedDense : public LogitsSource {
public:
    FactorizedDense(ParamStore& s, const std::string& p, const AttnConfig& c) : H_(c.heads), a_(fd_a(c)) {
        const int d = c.d_model, D = d / c.heads;
        b_ = c.max_len / a_;
        w1_ = s.weight(p + "FD.w1", {d, d}, c.weights);
        b1_ = s.bias(p + "FD.b1", {d});
        w_a_ = s.weight(p + "FD.w_a", {c.heads, D, a_}, c.weights);
        b_a_ = s.bias(p + "FD.b_a", {c.heads, a_});
        w_b_ = s.weight(p + "FD.w_b", {c.heads, D, b_}, c.weights);
        b_b_ = s.bias(p + "FD.b_b", {c.heads, b_});
    }
    Tensor logits(const Tensor& x, const Mask& mask, Tensor*) override {
        const int Tk = mask.q_offset + x.dim(1);
        Tensor h = linear_relu(x, *w1_, *b1_);               // (B, Tq, H*D), read per head in place
        Tensor A = head_linear(h, H_, *w_a_, *b_a_, a_);     // (B, H, Tq, a)
        Tensor B = head_linear(h, H_, *w_b_, *b_b_, b_);     // (B, H, Tq, b)
        return fd_outer(A, B, Tk);                           // (B, H, Tq, Tk)
    }

private:
    int H_, a_, b_ = 0;
    Tensor *w1_, *b1_, *w_a_, *b_a_, *w_b_, *b_b_;
};

}  // namespace

SYNTH_REGISTER_VARIANT(FD, [] {
    VariantInfo v;
    v.name = "FD";
    v.description = "Factorized Dense: logits[i, j] = A_i[j mod a] * B_i[j / a] from two small per-head maps";
    v.settings = {Setting::integer("fd-a", 0, "a, a divisor of L (0 = the divisor nearest sqrt(L))",
                                   Setting::Bound::NonNegative)};
    v.param_count = [](const AttnConfig& c) {
        const int64_t d = c.d_model, H = c.heads, D = d / H, a = fd_a(c), b = c.max_len / a;
        return d * d + d + H * D * (a + b) + H * (a + b);  // W1, b1, W_a, W_b, b_a, b_b
    };
    v.make_source = source_factory<FactorizedDense>();
    return v;
}());

}  // namespace synth
