#include "engine/gemm/precision.h"

#include <cpuid.h>

#include <cstdlib>

#include "base/error.h"
#include "engine/gemm/onednn.h"

namespace synth {

static GemmProvider g_provider = GemmProvider::OpenBlas;
void set_gemm_provider(GemmProvider g) { g_provider = g; }
GemmProvider gemm_provider() { return g_provider; }

Precision parse_precision(const std::string& s) {
    if (s == "fp32") return Precision::Fp32;
    if (s == "bf16") return Precision::Bf16;
    fail("--precision=", s, " is not a precision: fp32 or bf16");
}

const char* precision_name(Precision p) { return p == Precision::Bf16 ? "bf16" : "fp32"; }

const char* provider_name(GemmProvider g) {
    switch (g) {
        case GemmProvider::Bf16Onednn: return "onednn-bf16";
        case GemmProvider::Bf16Rounded: return "rounded-bf16";
        case GemmProvider::OpenBlas: break;
    }
    return "openblas-fp32";
}

CpuBf16 probe_cpu_bf16() {
    CpuBf16 c;
    unsigned a, b, cx, d;
    // CPUID leaf 7: sub-leaf 0 EDX bit 22 is AMX-BF16; sub-leaf 1 EAX bit 5 is AVX512_BF16.
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) c.amx_bf16 = (d >> 22) & 1;
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512_bf16 = (a >> 5) & 1;
    __builtin_cpu_init();
    c.amd = __builtin_cpu_is("amd");
    // oneDNN also checks that the kernel lets this process use the AMX tile state.
    c.onednn_bf16 = onednn_has_bf16();
    return c;
}

GemmProvider choose_gemm_provider(Precision p, const CpuBf16& cpu, const std::string& request) {
    SYNTH_CHECK(request.empty() || request == "auto" || request == "onednn" || request == "rounded",
                "SYNTH_BF16_GEMM=", request, " is not a bf16 GEMM provider: auto, onednn or rounded");
    if (p == Precision::Fp32) return GemmProvider::OpenBlas;
    if (request == "rounded") return GemmProvider::Bf16Rounded;
    if (request == "onednn") {
        SYNTH_CHECK(cpu.onednn_bf16, "SYNTH_BF16_GEMM=onednn, but oneDNN has no bf16 matmul on this CPU (it needs "
                                     "AVX512-BF16 or AMX",
                    onednn_built() ? "" : ", and synth was built with ONEDNN=0",
                    "); unset it to round the operands instead");
        return GemmProvider::Bf16Onednn;
    }
    // By measurement (docs/precision.md): oneDNN's bf16 matmul beats fp32 on AMX and on AMD's
    // AVX512-BF16 (Zen 4: 1.6-1.9x OpenBLAS fp32 on the large shapes), not on Intel's without AMX.
    const bool pays = cpu.amx_bf16 || (cpu.avx512_bf16 && cpu.amd);
    return pays && cpu.onednn_bf16 ? GemmProvider::Bf16Onednn : GemmProvider::Bf16Rounded;
}

std::string set_precision(Precision p) {
    const char* env = std::getenv("SYNTH_BF16_GEMM");
    const CpuBf16 cpu = p == Precision::Bf16 ? probe_cpu_bf16() : CpuBf16{};
    const GemmProvider g = choose_gemm_provider(p, cpu, env ? env : "");
    set_gemm_provider(g);
    std::string line = std::string("precision ") + precision_name(p) + ": " + provider_name(g);
    const std::string units = cpu.amx_bf16      ? "AMX-BF16"
                              : cpu.avx512_bf16 ? std::string(cpu.amd ? "AMD" : "Intel") + " AVX512-BF16 but no AMX"
                                                : "neither AMX nor AVX512-BF16";
    if (g == GemmProvider::Bf16Onednn)
        line += std::string(" (oneDNN ") + onednn_version() + " matmul on " + onednn_isa() + ")";
    else if (g == GemmProvider::Bf16Rounded)
        line += " (operands rounded to bf16, OpenBLAS fp32 GEMM: bf16's numbers, not its speed; " +
                (onednn_built() ? "this CPU has " + units : std::string("built without oneDNN (make ONEDNN=0)")) + ")";
    return line;
}

}  // namespace synth
