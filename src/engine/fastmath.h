// fastmath.h: exp for float loops that must vectorise.
//
// std::exp is a library call that GCC vectorises only under -ffast-math, which this project
// does not use (it would also license reassociation everywhere). The softmax and the
// cross-entropy over a 4,000-token vocabulary spend much of their time in exp, so they call
// fast_exp, a branch-free Cephes-style expf that auto-vectorises at -O3 with -fno-trapping-math
// (Makefile; without it GCC keeps its selects as branches, and the loop scalar):
//   x = n ln2 + r with |r| <= ln2/2 (ln2 split in two constants for an exact reduction),
//   exp(r) by its degree-7 Taylor/minimax polynomial, 2^n built in the exponent bits.
// Relative error below 2e-7 on [-87, 88] (8.2e-8 measured) (tests/test_ops.cpp checks it against std::exp);
// below -87 (including -inf, a masked logit) it returns exactly 0, above 88 it saturates at
// exp(88), about 1.65e38 (finite: callers subtract the row maximum first), and NaN stays NaN.
#pragma once

#include <cstdint>

namespace synth {

inline float fast_exp(float x) {
    // Clamped so that n below is a small integer for every input, NaN included (a NaN fails
    // the first comparison): converting and shifting it is then well defined.
    float xc = x > -87.0f ? x : -87.0f;
    xc = xc < 88.0f ? xc : 88.0f;
    // n = round(x / ln2) by the 1.5 * 2^23 trick (adding it leaves the integer part in the
    // mantissa): plain adds vectorise, floorf does not under strict IEEE flags.
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    const float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    // 2^n from its exponent bits; __builtin_bit_cast, unlike memcpy into a local, keeps the
    // value in a register, which the vectoriser needs.
    const float scale = __builtin_bit_cast(float, ((int32_t)n + 127) << 23);
    return x < -87.0f ? 0.0f : (x == x ? p * scale : x);  // NaN in, NaN out: divergence stays visible
}

}  // namespace synth
