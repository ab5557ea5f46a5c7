// bf16.h: the bfloat16 number format, as GEMM operands use it under --precision=bf16
// (docs/precision.md).
//
// A bf16 is the upper 16 bits of an IEEE fp32: the same sign and 8-bit exponent (so the same
// range, and no loss scaling is needed), and 7 of the 23 mantissa bits (about 2-3 significant
// decimal digits, a relative rounding error of at most 2^-8). Widening a bf16 back to fp32 is
// exact, and so is the product of two bf16 values in fp32 (8 + 8 significant bits fit in 24):
// that is why a GEMM on bf16 inputs with fp32 accumulation (AMX's TDPBF16PS, AVX512-BF16's
// VDPBF16PS, oneDNN's bf16 matmul) computes, up to summation order, exactly what an fp32 GEMM
// computes on inputs first rounded to bf16. The rounded-operand provider (precision.h) relies on it.
#pragma once

#include <cstdint>
#include <cstring>

namespace synth {

// fp32 -> bf16 bits, rounding to nearest with ties to even (as PyTorch's conversion does).
// NaN stays a quiet NaN of the same sign; values that round past the largest bf16 become inf.
inline uint16_t bf16_bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  // NaN: keep it quiet
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// bf16 bits -> fp32, exactly.
inline float bf16_to_float(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// x rounded to the nearest bf16, as an fp32.
inline float bf16_round(float x) { return bf16_to_float(bf16_bits(x)); }

}  // namespace synth
