// precision.h: --precision=fp32|bf16, and which GEMM provider each one runs on this CPU
// (docs/precision.md).
//
// bf16 means: every matrix product (synth::sgemm: the projections, the FFN, the LM head, the
// batched attention products, forward and backward) takes its two operands rounded to bf16
// and accumulates in fp32. Everything else stays fp32: master weights, gradients, AdamW
// moments, activations between ops, layernorm and softmax statistics, the loss and the
// gradient-norm clip. bf16 keeps fp32's exponent range, so no loss scaling is needed.
//
// Providers, chosen at run time (choose_gemm_provider) and printed by every runner:
//   OpenBlas     fp32, the default and the reference (gradient checks, PyTorch parity).
//   Bf16Onednn   oneDNN's bf16 matmul (onednn.h): AMX tiles, or AMD's AVX512-BF16; the
//                per-(batch, head) attention products as one batched call (sgemm_batched).
//   Bf16Rounded  the operands rounded to bf16 (bf16.h), then OpenBLAS's fp32 GEMM. The same
//                numbers as a bf16 GEMM up to summation order, at fp32's speed less the
//                rounding pass: bf16 on any other CPU, so that a bf16 run reproduces on
//                any machine, and on every machine when synth is built with `make ONEDNN=0`.
// Why Intel's AVX512-BF16 without AMX gets Bf16Rounded: there oneDNN's bf16 matmul ran at
// 166-202 GFLOP/s on the LM's large shapes, below rounded-bf16's 199-299; on AMD's Zen 4 it ran
// at 241-352, above fp32's 147-188 (docs/precision.md). The environment
// variable SYNTH_BF16_GEMM=onednn|rounded overrides the choice, to measure both.
#pragma once

#include <string>

namespace synth {

enum class Precision { Fp32, Bf16 };
enum class GemmProvider { OpenBlas, Bf16Onednn, Bf16Rounded };

// "fp32" | "bf16"; throws naming the accepted values otherwise.
Precision parse_precision(const std::string& s);
const char* precision_name(Precision p);
const char* provider_name(GemmProvider g);  // "openblas-fp32", "onednn-bf16", "rounded-bf16"

// What this CPU offers bf16 GEMMs: its CPUID flags and whether oneDNN can create a bf16 matmul.
struct CpuBf16 {
    bool amx_bf16 = false, avx512_bf16 = false, onednn_bf16 = false;
    bool amd = false;  // CPUID vendor "AuthenticAMD": its AVX512-BF16 pays, Intel's does not (docs/precision.md)
};
CpuBf16 probe_cpu_bf16();

// The policy, a pure function of its arguments so that it is tested for every kind of CPU:
// fp32 -> OpenBlas; bf16 -> Bf16Onednn with AMX, or with AVX512-BF16 on AMD (when oneDNN
// can), else Bf16Rounded.
// `request` ("" or "auto", "onednn", "rounded") overrides the bf16 choice; "onednn" where
// oneDNN has no bf16 matmul, or any other value, throws.
GemmProvider choose_gemm_provider(Precision p, const CpuBf16& cpu, const std::string& request);

// Which implementation synth::sgemm (blas.h) runs. Process-wide; set it before any work, never
// while GEMMs run.
void set_gemm_provider(GemmProvider g);
GemmProvider gemm_provider();

// Chooses for this CPU (request: $SYNTH_BF16_GEMM), makes synth::sgemm use the choice for the
// rest of the process, and returns the line a runner prints, e.g. "precision bf16: rounded-bf16
// (operands rounded to bf16, OpenBLAS fp32 GEMM; this CPU has neither AMX nor AVX512-BF16)".
std::string set_precision(Precision p);

}  // namespace synth
